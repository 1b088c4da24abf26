"""Export to and import from the released PSSL format that PaddleSeg's PSSLDataset reads."""
import numpy as np
import pytest
from PIL import Image

from core.imagenet_classes import imagenet_synsets
from core import released_format
from core.store import (BACKGROUND, FOREGROUND, IGNORE, INDEX_CLASS_ID, INDEX_ERROR, INDEX_HEIGHT, INDEX_PATH,
                        INDEX_STATUS, INDEX_TARGET, INDEX_WIDTH, MASK, STATUS_OK, WEIGHT, WEIGHT_SCALE, open_store,
                        write_layout)
from pipeline import paddleseg_format
from pipeline.fuse import stage as fuse
from pipeline.inspect import verify
from benchmarks.synthetic_store import make_synthetic_store
from tests.helpers.paddleseg_files import sample_like_store

WNIDS = list(imagenet_synsets())  # the synthetic store's classes and folders


@pytest.fixture()
def fused_store(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 10, map_size=16, shard=4, bad=(3,))
    group = open_store(store)
    write_layout(group, data_root=str(tmp_path / "imagenet" / "train"))  # index paths are <wnid>/<wnid>_<i>.JPEG
    fuse.run({"fuse": {"refine": "none", "combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2}}, store)
    return store


def paddleseg_label(pssl_root, line, synsets):
    """PaddleSeg's own decoding of one train.txt line (PSSLDataset.__getitem__): class from the file name."""
    image_path = line.split(".JPEG")[0] + ".JPEG"
    class_id = synsets.index(image_path.split("/")[-1].split("_")[0])
    raw = np.load(pssl_root / line)["arr_0"]
    label = np.zeros_like(raw, dtype=np.int64) + 1000
    label[raw == 1] = class_id
    return class_id, raw, label


def test_export_writes_the_released_layout(fused_store, tmp_path):
    out = tmp_path / "released"
    plan = paddleseg_format.export_store(fused_store, out)
    assert len(plan.lines) == 9  # the bad image is left out
    assert plan.imagenet_root == tmp_path / "imagenet"
    group = open_store(fused_store)
    lines = (out / "train.txt").read_text().splitlines()
    assert (out / "imagenet_lsvrc_2015_synsets.txt").read_text().splitlines() == WNIDS
    for line, i in zip(lines, [0, 1, 2, 4, 5, 6, 7, 8, 9]):
        path = str(group[INDEX_PATH][i])
        wnid = WNIDS[group[INDEX_TARGET][i]]
        assert line == f"train/{wnid}/{path.split('/')[-1]}_eiseg.npz"
        assert line.split(".JPEG")[0] + ".JPEG" == f"train/{wnid}/{path.split('/')[-1]}"  # PaddleSeg's image path
        class_id, raw, label = paddleseg_label(out, line, WNIDS)
        assert class_id == group[INDEX_TARGET][i]
        assert set(np.unique(label)) <= {class_id, 1000} and (label == class_id).sum() == (raw == 1).sum()
        assert raw.dtype == np.uint8 and raw.shape == (group[INDEX_HEIGHT][i], group[INDEX_WIDTH][i])
        assert set(np.unique(raw)) <= {0, 1, 255}
        # nearest resize keeps the fractions of each value close to the stored mask's
        stored = group[MASK][i]
        assert abs((raw == 1).mean() - (stored == FOREGROUND).mean()) < 0.05


def test_round_trip_is_exact_at_map_size(fused_store, tmp_path):
    group = open_store(fused_store)
    group[INDEX_HEIGHT][:] = 16
    group[INDEX_WIDTH][:] = 16
    out, back = tmp_path / "released", tmp_path / "imported.zarr"
    paddleseg_format.export_store(fused_store, out)
    summary = paddleseg_format.import_released(out, back, imagenet_root=tmp_path / "imagenet", map_size=16,
                                               shard_size=4)
    assert summary == {"images": 9, "shards": 3, "imported_shards": 3}
    imported = open_store(back)
    ok = [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert np.array_equal(imported[MASK][:], group[MASK][ok])
    assert np.array_equal(imported[WEIGHT][:], np.where(group[MASK][ok] == IGNORE, 0, WEIGHT_SCALE))
    assert list(imported[INDEX_CLASS_ID][:]) == list(group[INDEX_TARGET][ok])
    assert str(imported[INDEX_PATH][0]).startswith("train/n") and str(imported[INDEX_PATH][0]).endswith(".JPEG")
    assert (imported[INDEX_STATUS][:] == STATUS_OK).all()
    assert verify.verify_store(back) == []
    again = paddleseg_format.import_released(out, back, map_size=16, shard_size=4)
    assert again["imported_shards"] == 0


def test_reader_follows_paddleseg_rule(tmp_path):
    raw = np.array([[0, 1, 2], [255, 1, 7]], np.uint8)
    np.savez_compressed(tmp_path / "x.JPEG_eiseg.npz", raw)
    label = released_format.load_released_label(tmp_path / "x.JPEG_eiseg.npz")
    assert label.tolist() == [[0, 1, 0], [255, 1, 0]]
    as_paddle = released_format.load_released_label(tmp_path / "x.JPEG_eiseg.npz", ignore_as_background=True)
    assert as_paddle.tolist() == [[0, 1, 0], [0, 1, 0]]
    np.savez_compressed(tmp_path / "bad.npz", other=raw)
    with pytest.raises(ValueError, match="no `arr_0`"):
        released_format.load_released_label(tmp_path / "bad.npz")


def test_import_records_unreadable_label_as_bad(tmp_path):
    root = tmp_path / "released"
    (root / "train" / "n00000001").mkdir(parents=True)
    np.savez_compressed(root / "train" / "n00000001" / "n00000001_1.JPEG_eiseg.npz", np.ones((20, 30), np.uint8))
    (root / "train" / "n00000001" / "n00000001_2.JPEG_eiseg.npz").write_bytes(b"not a zip")
    (root / "train.txt").write_text("train/n00000001/n00000001_1.JPEG_eiseg.npz\n"
                                    "train/n00000001/n00000001_2.JPEG_eiseg.npz\n")
    (root / "imagenet_lsvrc_2015_synsets.txt").write_text("n00000000\nn00000001\n")
    paddleseg_format.import_released(root, tmp_path / "s.zarr", map_size=8, shard_size=4)
    group = open_store(tmp_path / "s.zarr")
    assert group[INDEX_STATUS][:].tolist() == [1, 2]
    assert str(group[INDEX_ERROR][1]).startswith("label unreadable")
    assert (group[INDEX_HEIGHT][0], group[INDEX_WIDTH][0], group[INDEX_CLASS_ID][0]) == (20, 30, 1)
    assert (group[MASK][0] == FOREGROUND).all() and (group[MASK][1] == IGNORE).all()


def export_ignore_band(store, out, ignore_as):
    group = open_store(store)
    plan = paddleseg_format.export_store(store, out, ignore_as=ignore_as)
    row, line = next((i, line) for i, line in plan.lines.items() if (group[MASK][i] == IGNORE).any())
    return np.load(out / line)["arr_0"], group[MASK][row], group[INDEX_HEIGHT][row], group[INDEX_WIDTH][row]


@pytest.mark.parametrize("ignore_as,value", [("255", IGNORE), ("background", BACKGROUND), ("foreground", FOREGROUND)])
def test_ignore_band_is_written_as_chosen(fused_store, tmp_path, ignore_as, value):
    raw, stored, height, width = export_ignore_band(fused_store, tmp_path / ignore_as, ignore_as)
    expected = paddleseg_format._resize_nearest(stored, int(height), int(width))
    assert np.array_equal(raw == value, (expected == IGNORE) | (expected == value))
    with pytest.raises(paddleseg_format.ExportError, match="ignore_as must be one of"):
        paddleseg_format.export_store(fused_store, tmp_path / "x", ignore_as="ignore")


def test_names_paddleseg_cannot_resolve_stop_the_export_in_one_line(tmp_path):
    store = sample_like_store(tmp_path, WNIDS)
    with pytest.raises(paddleseg_format.ExportError, match="3 image paths PaddleSeg cannot resolve.*--write-images") \
            as stopped:
        paddleseg_format.export_store(store, tmp_path / "out")
    assert "\n" not in str(stopped.value) and not (tmp_path / "out" / "train.txt").exists()


def test_write_images_gives_names_and_files_paddleseg_resolves(tmp_path):
    store = sample_like_store(tmp_path, WNIDS)
    out = tmp_path / "out"
    plan = paddleseg_format.export_store(store, out, write_images=True)
    group = open_store(store)
    for i, line in plan.lines.items():
        class_id, raw, label = paddleseg_label(out, line, WNIDS)
        assert class_id == group[INDEX_TARGET][i]
        image = plan.imagenet_root / (line.split(".JPEG")[0] + ".JPEG")  # where PaddleSeg reads the image
        assert np.asarray(Image.open(image)).shape == (*raw.shape, 3)
