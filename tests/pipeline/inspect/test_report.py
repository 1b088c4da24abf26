"""Inspection report, pictures and verification on a real fused store, and the store format's upgrade."""
import json
import re
import sys

import numpy as np
import pytest
from PIL import Image

from core.imagenet_classes import imagenet_synsets, readable_name
from core.store import (ENCODING, EXPLAIN_STAGE, FOREGROUND, FORMAT, FUSE_KEY, FUSE_STAGE, IGNORE, INDEX_CLASS_SOURCE,
                        INDEX_PATH, INDEX_STATUS, INDEX_TARGET, MASK, WEIGHT, StoreError, mark_done, open_store,
                        progress_name, q99_name, saliency_name, score_name)
from core.store_check import list_arrays
from pipeline.fuse import stage as fuse
from pipeline.inspect import report as inspect_store
from pipeline.inspect import verify
from benchmarks.synthetic_store import make_synthetic_store
from tests.helpers.cli import run_cli

GRADCAM_A = saliency_name("net_a", "gradcam")


@pytest.fixture()
def fused_store(tmp_path):
    store = tmp_path / "run" / "pssl.zarr"
    make_synthetic_store(store, 10, map_size=16, shard=4, bad=(3,))
    fuse.run({"fuse": {"refine": "none", "combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2}}, store)
    return store


def test_summary_reports_arrays_completion_inputs_and_labels(fused_store):
    text = inspect_store.summarize(fused_store, arrays=True)
    group = open_store(fused_store)
    assert "10 images, shard size 4 (3 shards), map size 16" in text
    assert GRADCAM_A in text and "10x16x16" in text and "1x16x16" in text and "4x16x16" in text
    assert "(the array table: --arrays)" not in text and GRADCAM_A not in inspect_store.summarize(fused_store)
    assert progress_name(FUSE_STAGE, FUSE_KEY) in text and "3 / 3 shards done" in text
    assert "net_b/smoothgrad" in text and "3 / 3 shard files written" in text
    assert "9 ok, 1 bad, 0 pending" in text
    assert f"[3] {group[INDEX_PATH][3]}: unreadable: synthetic" in text
    ok = np.arange(10) != 3
    mask, weight = group[MASK][:][ok], group[WEIGHT][:][ok]
    decided = mask != IGNORE
    expected = (f"foreground {(mask == FOREGROUND).mean():.1%}, ignore {(mask == IGNORE).mean():.1%}, "
                f"mean weight over non-ignore {weight[decided].mean() / 255:.3f}")
    assert expected in text


def test_summary_of_unfused_store(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 4, map_size=8, shard=4)
    assert "not fused yet" in inspect_store.summarize(store)


def test_compression_ratio_counts_written_shards(fused_store):
    lines = inspect_store.array_table(fused_store, list_arrays(open_store(fused_store)))
    mask_line = next(line for line in lines if line.startswith(f"{MASK} "))
    on_disk, _ = inspect_store.stored_bytes(fused_store, MASK)
    assert float(mask_line.split()[-1]) == pytest.approx(10 * 16 * 16 / on_disk, abs=0.05)


def test_pictures_are_written(fused_store, tmp_path):
    out = tmp_path / "pictures"
    written = inspect_store.write_pictures(fused_store, out, overlay=[0, 3], contact=True)
    assert [p.name for p in written] == ["overlay_0000000.png", "overlay_0000003.png", "contact_sheet.png"]
    for path in written:
        with Image.open(path) as picture:
            width, height = picture.size
            assert width > 300 and height > 100
            assert np.asarray(picture.convert("L")).std() > 10  # not a blank canvas
    with pytest.raises(IndexError, match="out of range"):
        inspect_store.write_pictures(fused_store, out, overlay=[10])


def test_verify_clean_store(fused_store):
    assert verify.verify_store(fused_store) == []


def test_verify_names_a_deleted_shard_file(fused_store):
    (fused_store / GRADCAM_A / "c" / "1" / "0" / "0").unlink()
    (fused_store / INDEX_STATUS / "c" / "2").unlink()
    problems = verify.verify_store(fused_store)
    assert f"{GRADCAM_A}: shard 1: file {GRADCAM_A}/c/1/0/0 is missing" in problems
    assert f"{INDEX_STATUS}: shard 2: file {INDEX_STATUS}/c/2 is missing" in problems
    assert len(problems) == 2


def test_verify_names_a_truncated_shard_file(fused_store):
    shard_file = fused_store / MASK / "c" / "2" / "0" / "0"
    data = shard_file.read_bytes()
    shard_file.write_bytes(data[: len(data) // 2])
    problems = verify.verify_store(fused_store)
    assert problems == [f"{MASK}: shard 2: file {MASK}/c/2/0/0 is damaged "
                        "(shard index checksum mismatch (truncated or overwritten))"]
    full = verify.verify_store(fused_store, full=True)
    assert len(full) == 1 and full[0].startswith(f"{MASK}: shard 2: cannot decode")


def test_verify_checks_only_flagged_shards(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 8, map_size=8, shard=4, explained=False)
    (store / GRADCAM_A / "c" / "1" / "0" / "0").unlink()
    assert verify.verify_store(store) == []  # shard 1 was never flagged as explained
    mark_done(open_store(store), EXPLAIN_STAGE, "net_a", 1)
    assert verify.verify_store(store) == [f"{GRADCAM_A}: shard 1: file {GRADCAM_A}/c/1/0/0 is missing"]


def test_the_summary_names_classes_and_lists_what_the_classifiers_barely_see(fused_store):
    group = open_store(fused_store)
    target = group[INDEX_TARGET][:]
    scores = {m: group[score_name(m)][:].astype(np.float32) for m in ("net_a", "net_b")}
    mean = np.where(np.arange(10) == 3, np.inf, scores["net_a"] + scores["net_b"])  # image 3 is bad input
    low = int(np.argmin(mean))
    low_p = (scores["net_a"][low] + scores["net_b"][low]) / 2
    text = inspect_store.summarize(fused_store, low_prob=float(low_p) + 1e-3)
    name = readable_name(imagenet_synsets()[target[low]])
    assert f"low target probability (mean over 2 models < {float(low_p) + 1e-3:g}): 1 image(s)" in text
    assert re.search(rf"\[{low}\]\s+{re.escape(str(group[INDEX_PATH][low]))}\s+{re.escape(name)}\s+{low_p:.4f}", text)
    classes = text.split("classes:")[1].split("\n\n")[0]
    assert "(by mean weight, lowest first)" in classes
    for i in range(10):  # every target by name, with its images
        assert readable_name(imagenet_synsets()[target[i]]) in classes
    assert text.index("labels") < text.index("classes:") < text.index("completion")  # short answers first


def test_columns_are_aligned_whatever_the_names(tmp_path):
    store = tmp_path / "s.zarr"
    long_model = "a_classifier_with_a_very_long_name_indeed"
    make_synthetic_store(store, 4, map_size=8, shard=2, models=(long_model, "b"), explainers=("grad_cam",))
    lines = inspect_store.summarize(store, arrays=True).splitlines()
    completion = lines[lines.index("completion") + 1:lines.index("arrays") - 1]
    assert len({line.index(" / ") for line in completion}) == 1, completion
    arrays = lines[lines.index("arrays") + 1:]
    assert len({line.index("dtype") if i == 0 else None for i, line in enumerate(arrays)} - {None}) == 1
    starts = {len(line) - len(line.split("  ", 1)[1].lstrip()) for line in arrays if "  " in line.strip()}
    assert len(starts) == 1, arrays  # the shape column starts at one place, long names or not


def test_inspect_image_and_json_on_the_command_line(fused_store):
    group = open_store(fused_store)
    shown = run_cli([sys.executable, "-m", "pipeline", "inspect", str(fused_store), "--image", "2"])
    assert shown.returncode == 0, shown.stderr
    name = readable_name(imagenet_synsets()[group[INDEX_TARGET][2]])
    assert f"image 2: {group[INDEX_PATH][2]}" in shown.stdout and f"target: {name}" in shown.stdout
    for model in ("net_a", "net_b"):
        assert re.search(rf"{model}\s+{re.escape(name)} \(\d+\)\s+{float(group[score_name(model)][2]):.4f}", shown.stdout)
    bad = json.loads(run_cli([sys.executable, "-m", "pipeline", "inspect", str(fused_store), "--image", "3",
                              "--json"]).stdout)
    assert bad["status"] == "bad" and bad["error"] == "unreadable: synthetic" and bad["labels"] is None
    report = json.loads(run_cli([sys.executable, "-m", "pipeline", "inspect", str(fused_store), "--json",
                                 "--low-prob", "0.5"]).stdout)
    assert report["images"] == 10 and report["inputs"]["bad"] == 1 and len(report["classes"]) == len(set(group[INDEX_TARGET][:]))
    assert report["low_target_probability"]["count"] == sum(1 for i in range(10) if i != 3 and (
        float(group[score_name("net_a")][i]) + float(group[score_name("net_b")][i])) / 2 < 0.5)
    outside = run_cli([sys.executable, "-m", "pipeline", "inspect", str(fused_store), "--image", "10"])
    assert outside.returncode == 1 and outside.stderr.count("\n") == 1 and "out of range" in outside.stderr


def test_a_format_1_store_is_refused_to_read_and_upgraded_by_its_command(tmp_path):
    """One reader path: a store of the old format names the command that rewrites it, which keeps its labels."""
    store = tmp_path / "old.zarr"
    make_synthetic_store(store, 6, map_size=16, shard=4, noise=0.5)
    fuse.run({"fuse": {"refine": "none", "combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2}}, store)
    group = open_store(store)
    labels = group[MASK][:], group[WEIGHT][:]
    recorded = dict(group.attrs["fuse"])
    attrs = {k: v for k, v in group.attrs.items() if k != FORMAT}  # as format 1 wrote it:
    attrs["fuse"] = {k: v for k, v in recorded.items() if k not in ("threshold_rule", "combine", "crf")}
    group.attrs.put(attrs)
    del group[q99_name("net_a", "gradcam")], group[INDEX_CLASS_SOURCE]
    for name in ("gradcam", "smoothgrad"):
        array = group[saliency_name("net_b", name)]
        array.attrs.put({k: v for k, v in array.attrs.items() if k != ENCODING})
    with pytest.raises(StoreError, match=f"format 1, older than 2: `python -m pipeline upgrade-store {store}`"):
        open_store(store, mode="r")
    result = run_cli([sys.executable, "-m", "pipeline", "upgrade-store", str(store)])
    assert result.returncode == 0 and "store format 1 -> 2" in result.stdout
    group = open_store(store, mode="r")
    assert group.attrs["fuse"] == recorded and not verify.verify_store(store)
    fuse.run({"fuse": {"refine": "none", "combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2, "overwrite": True}}, store)
    np.testing.assert_array_equal(open_store(store)[MASK][:], labels[0])
    np.testing.assert_array_equal(open_store(store)[WEIGHT][:], labels[1])
