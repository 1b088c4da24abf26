"""The yardsticks benchmark end to end on a synthetic store whose object masks are known: recipes scored per
image, differences with intervals, costs from the plan, single- and multi-object scenes apart."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from benchmarks.synthetic_store import make_synthetic_store
from benchmarks.yardsticks.__main__ import main
from benchmarks.yardsticks.recipes import cost, pipeline_config
from benchmarks.yardsticks.settings import RecipeSection
from core.config import load_config
from core.schema import PipelineConfig
from core.store import INDEX_PATH, open_store
from pipeline.cli import config_context


def world(tmp_path: Path, n: int = 12) -> dict:
    """A synthetic store with its true masks written as 0/1 PNGs and a scenes file naming every third one multi."""
    store = tmp_path / "s.zarr"
    masks = make_synthetic_store(store, n, map_size=16, shard=4, explainers=("grad_cam", "lime"), noise=0.3)
    gt = tmp_path / "gt"
    gt.mkdir()
    paths = [str(p) for p in open_store(store, mode="r")[INDEX_PATH][:]]
    for path, mask in zip(paths, masks):
        Image.fromarray(mask.astype(np.uint8)).save(gt / f"{Path(path).stem}.png")
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps({"images": [{"image": f"images/{Path(p).name}", "kind": "beside" if i % 3 == 0
                                              else "single"} for i, p in enumerate(paths)]}))
    return {"store": str(store), "ground_truth": str(gt), "scenes": str(scenes)}


def test_recipes_are_scored_per_image_with_intervals_and_costs(tmp_path):
    stick = world(tmp_path)
    settings = {
        "yardsticks": {"synthetic": stick},
        "baseline": "both, τ 0.4",
        "recipes": [
            {"name": "both, τ 0.4", "fuse": {"combine": "none", "refine": "none", "fg_threshold": 0.4,
                                             "bg_threshold": 0.2}},
            {"name": "both, τ 0.95", "fuse": {"combine": "none", "refine": "none", "fg_threshold": 0.95,
                                              "bg_threshold": 0.9}},
            {"name": "grad_cam, τ 0.4", "explainers": ["grad_cam"],
             "fuse": {"combine": "none", "refine": "none", "fg_threshold": 0.4, "bg_threshold": 0.2}}],
        "resamples": 200,
    }
    config = tmp_path / "yardsticks.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "yardsticks.md"
    assert main(["--config", str(config), "--out", str(out)]) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert set(results["columns"]) == {"synthetic", "synthetic single-object", "synthetic multi-object"}
    assert results["columns"]["synthetic multi-object"]["images"] == 4
    whole = results["columns"]["synthetic"]["recipes"]
    assert whole["both, τ 0.4"]["difference"] == [0.0, 0.0, 0.0]
    assert whole["both, τ 0.4"]["score"] > 0.5  # the synthetic maps are noisy copies of the true masks
    strict = whole["both, τ 0.95"]  # almost nothing passes 0.95: a loss on every image, and it holds
    assert strict["score"] < whole["both, τ 0.4"]["score"] and strict["holds"] and strict["difference"][2] < 0
    text = out.read_text()
    assert "| both, τ 0.95 |" in text and "**" in text and "synthetic multi-object (4)" in text
    assert results["costs"]["grad_cam, τ 0.4"]["backwards"] < results["costs"]["both, τ 0.4"]["forwards"]


def test_a_recipe_is_a_runnable_config_and_the_plan_counts_its_passes():
    base = load_config("conf/sample.yaml", schema=PipelineConfig, context=config_context)
    cams = RecipeSection(name="cams", models=1, explainers=["grad_cam", "layer_cam"])
    config = pipeline_config(cams, base)
    assert [m.arch for m in config.explain.models] == ["efficientnet_lite0"]
    assert list(config.explain.explainers) == ["grad_cam", "layer_cam"] and config.explain.objectness is not None
    spent = cost(cams, base)  # the scores pass, and one forward + backward to the CAM layer per CAM
    assert (spent.forwards, spent.backwards, spent.object_model) == (3, 2, True)
    alone = RecipeSection(name="alone", fuse={"combine": "none"})
    assert pipeline_config(alone, base).explain.objectness is None and not cost(alone, base).object_model
