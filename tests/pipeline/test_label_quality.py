"""Label quality against ground truth: a hand-computed IoU, class masks, and the ensemble's advantage."""
import numpy as np
import pytest
from PIL import Image

from core.store import INDEX_PATH, open_store, saliency_name
from pipeline import label_quality
from pipeline.synthetic_store import make_synthetic_store


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
