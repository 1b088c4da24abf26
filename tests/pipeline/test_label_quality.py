"""Label quality against ground truth: a hand-computed IoU, class masks, and the ensemble's advantage."""
import numpy as np
import pytest
from PIL import Image

from core.store import BACKGROUND, FOREGROUND, IGNORE, INDEX_PATH, open_store, saliency_name
from pipeline import label_quality
from benchmarks.synthetic_store import make_synthetic_store


def one_image_store(tmp_path, gt_value):
    """One 10x10 image: map row 0 = 1.0, row 1 = 0.6, rest 0 (so q99 = 1 and n = map);
    ground truth rows 0-2 foreground, pixel (2, 0) ignore."""
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 1, map_size=10, shard=1, models=("m",), explainers=("e",))
    group = open_store(store)
    saliency = np.zeros((1, 10, 10), np.float16)
    saliency[0, 0], saliency[0, 1] = 1.0, 0.6
    group[saliency_name("m", "e")][:] = saliency
    gt = np.zeros((10, 10), np.uint8)
    gt[:3] = gt_value
    gt[2, 0] = 255
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    stem = str(group[INDEX_PATH][0]).split("/")[-1].rsplit(".", 1)[0]
    Image.fromarray(gt).save(gt_dir / f"{stem}.png")
    return store, gt_dir


def test_hand_computed_iou(tmp_path):
    store, gt_dir = one_image_store(tmp_path, 1)
    rows = label_quality.evaluate(store, gt_dir, thresholds=[0.5, 0.8])
    assert [r["subset"] for r in rows] == ["m/e", "m/e"]
    at_half, at_high = rows
    # t=0.5: predicted fg = rows 0-1 (20 px); 99 valid px, 29 gt fg, 70 gt bg
    assert at_half["iou_fg"] == pytest.approx(20 / 29) and at_half["iou_bg"] == pytest.approx(70 / 79)
    assert at_half["miou"] == pytest.approx((20 / 29 + 70 / 79) / 2)
    # t=0.8: predicted fg = row 0 only
    assert at_high["iou_fg"] == pytest.approx(10 / 29) and at_high["iou_bg"] == pytest.approx(70 / 89)
    assert at_half["images"] == 1


def test_class_masks_give_per_class_iou_and_plot(tmp_path):
    store, gt_dir = one_image_store(tmp_path, 7)
    plot = tmp_path / "plot.png"
    rows = label_quality.evaluate(store, gt_dir, thresholds=[0.5], plot_path=plot)
    assert rows[0]["per_class"] == {7: pytest.approx(20 / 29)}
    assert plot.stat().st_size > 5000
    assert "| m/e | 0.50 | " in label_quality.format_table(rows)


def test_ensemble_beats_single_noisy_members(tmp_path):
    store = tmp_path / "s.zarr"
    masks = make_synthetic_store(store, 6, map_size=24, shard=3, noise=0.5)
    group = open_store(store)
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    for i, mask in enumerate(masks):
        stem = str(group[INDEX_PATH][i]).split("/")[-1].rsplit(".", 1)[0]
        Image.fromarray(mask).save(gt_dir / f"{stem}.png")
    rows = label_quality.evaluate(store, gt_dir)
    best = {r["subset"]: r["miou"] for r in label_quality.best_rows(rows)}
    assert set(best) == {"net_a/gradcam", "net_a/smoothgrad", "net_b/gradcam", "net_b/smoothgrad",
                         "net_a (all explainers)", "net_b (all explainers)", "ensemble"}
    singles = max(v for k, v in best.items() if "/" in k)
    pairs = [best["net_a (all explainers)"], best["net_b (all explainers)"]]
    assert best["ensemble"] > max(pairs) and min(pairs) > singles  # averaging independent noise helps


def test_missing_ground_truth_is_named(tmp_path):
    store, _ = one_image_store(tmp_path, 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no ground-truth mask"):
        label_quality.evaluate(store, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not found"):
        label_quality.evaluate(store, tmp_path / "nowhere")


def write_png(path, array, mode=None):
    picture = Image.fromarray(array) if mode is None else Image.fromarray(array, mode)
    picture.save(path)
    return path


def palette_png(path, indices):
    picture = Image.fromarray(indices.astype(np.uint8), "L").convert("P")
    picture.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    picture.save(path)
    return path


@pytest.mark.parametrize("encoding, raw, expected", [
    ("binary01", np.array([[0, 1], [1, 0]], np.uint8), [[0, 1], [1, 0]]),
    ("binary255", np.array([[0, 255], [255, 0]], np.uint8), [[0, 1], [1, 0]]),
])
def test_binary_encodings_decode_to_background_and_foreground(tmp_path, encoding, raw, expected):
    decoded = label_quality.decode_ground_truth(write_png(tmp_path / "m.png", raw), encoding)
    assert decoded.tolist() == expected


def test_voc_palette_keeps_classes_and_the_255_ignore(tmp_path):
    indices = np.array([[0, 15, 15], [255, 3, 0]])
    decoded = label_quality.decode_ground_truth(palette_png(tmp_path / "m.png", indices), "voc")
    assert decoded.tolist() == [[0, 15, 15], [label_quality.GT_IGNORE, 3, 0]]


def test_imagenet_s_class_id_is_red_plus_256_green_and_1000_ignores(tmp_path):
    rgb = np.zeros((1, 4, 3), np.uint8)
    rgb[0, 1] = (5, 0, 0)             # id 5
    rgb[0, 2] = (151, 3, 0)           # id 151 + 3 * 256 = 919
    rgb[0, 3] = (1000 % 256, 1000 // 256, 0)  # ignore
    decoded = label_quality.decode_ground_truth(write_png(tmp_path / "m.png", rgb), "imagenet-s")
    assert decoded.tolist() == [[0, 5, 919, label_quality.GT_IGNORE]]


@pytest.mark.parametrize("encoding, raw, hint", [
    ("voc", np.array([[0, 255]], np.uint8), "0/255 binary mask: use --gt-encoding binary255"),
    ("binary255", np.array([[0, 1]], np.uint8), "0/1 binary mask: use --gt-encoding binary01"),
    ("binary01", np.array([[0, 0]], np.uint8), "is the object missing"),
    ("imagenet-s", np.array([[0, 1]], np.uint8), "RGB PNGs with the class id in R \\+ 256 G"),
])
def test_a_mask_without_foreground_is_one_line_naming_the_likely_mistake(tmp_path, encoding, raw, hint):
    with pytest.raises(label_quality.GroundTruthError, match=hint) as error:
        label_quality.decode_ground_truth(write_png(tmp_path / "m.png", raw), encoding)
    assert "\n" not in str(error.value) and "m.png" in str(error.value)


def test_stray_values_in_a_binary_mask_are_named(tmp_path):
    with pytest.raises(label_quality.GroundTruthError, match=r"values \[255\] in a binary01 mask.*binary255"):
        label_quality.decode_ground_truth(write_png(tmp_path / "m.png", np.array([[0, 255]], np.uint8)), "binary01")
    with pytest.raises(label_quality.GroundTruthError, match=r"values \[7\] in a binary255 mask \(only 0 and 255"):
        label_quality.decode_ground_truth(write_png(tmp_path / "m.png", np.array([[0, 7, 255]], np.uint8)),
                                          "binary255")


def test_fused_label_scores_per_image_with_ignore_as_background_and_excluded():
    fg, bg, ignore = FOREGROUND, BACKGROUND, IGNORE
    mask = np.array([[fg, fg, ignore, bg]])
    gt = np.array([[1, 0, 1, 1]])  # truth: fg at 0, 2, 3
    counts = label_quality.score_labels(mask, gt)
    summary = label_quality.summarise_scores({"a": counts})
    # ignore as background: pred fg {0, 1}, truth {0, 2, 3}: inter 1, union 4
    assert summary["per_image"]["a"]["iou_as_bg"] == pytest.approx(1 / 4)
    # ignore excluded: pixel 2 dropped; pred {0, 1}, truth {0, 3}: inter 1, union 3
    assert summary["per_image"]["a"]["iou_excl"] == pytest.approx(1 / 3)
    assert summary["per_image"]["a"]["ignore_fraction"] == pytest.approx(1 / 4)
    # background IoU (ignore as background): pred bg {2, 3}, truth bg {1}: inter 0, union 3
    assert summary["dataset"]["miou_as_bg"] == pytest.approx((1 / 4 + 0) / 2)


def test_cli_refuses_0_255_masks_read_as_voc_in_one_line_and_reads_them_as_binary255(tmp_path, capsys):
    from pipeline import cli

    store, gt_dir = one_image_store(tmp_path, 255)
    assert cli.main(["label-quality", str(store), str(gt_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no foreground pixel when read as voc" in err and "binary255" in err
    assert cli.main(["label-quality", str(store), str(gt_dir), "--gt-encoding", "binary255"]) == 0
    out = capsys.readouterr().out
    assert "| m/e |" in out and "fused labels:" in out  # the sweep, then: no fused labels in this store yet
