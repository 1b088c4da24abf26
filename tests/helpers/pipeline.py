"""A cheap pipeline config over two random-weight CNNs, and the index + explain stages run in-process."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from core.store import INDEX_TARGET, q99_name, saliency_name, scale_name, score_name
from pipeline.explain import stage as explain
from pipeline.fuse import stage as fuse
from pipeline.index import stage as index
from pipeline.cli import store_path
from pipeline.progress import StageProgress
from tests.helpers.models import TINY_CNN, tiny_object_model

RAY_TEST_DIR = "/tmp/ray_pssl_tests"


OBJECT_MODEL = "tiny_obj"


def object_section(tmp_path: Path, input_size: int = 32) -> dict:
    """An explain.objectness section running the tiny ONNX object model (exported at 64, run at input_size)."""
    return {"name": OBJECT_MODEL, "model": str(tiny_object_model(tmp_path / "tiny_objectness.onnx")),
            "input_size": input_size}


def tiny_config(tmp_path: Path, data_root: Path, objectness: bool = False, **sections) -> dict:
    """A pipeline config over two random-weight CNNs and cheap explainer settings (and, with `objectness`,
    the tiny object model as one more member)."""
    config = {
        "run": {"name": "test", "root": str(tmp_path / "runs")},
        "data": {"source": "imagefolder", "root": str(data_root), "min_side": 8, "class_ids_by_position": True},
        "store": {"map_size": 16, "shard_size": 2},
        "ray": {"workers": 2},
        "explain": {
            "seed": 0, "batch_size": 2, "num_classes": 10,
            "models": [{"arch": TINY_CNN, "name": "cnn_a", "seed": 1, "classes": 10, "input_size": 32},
                       {"arch": TINY_CNN, "name": "cnn_b", "seed": 2, "classes": 10, "input_size": 32}],
            "explainers": {"grad_cam": {}, "smooth_grad": {"samples": 2},
                           "lime": {"samples": 16, "segments": 8, "batch_size": 16}},
        },
    }
    # the default object model is the fetched ISNet and its rule needs object maps: here the tiny one, or none
    config["explain"]["objectness"] = object_section(tmp_path) if objectness else None
    if not objectness:
        config["fuse"] = {"combine": "none"}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


MEMBERS = [(m, e) for m in ("cnn_a", "cnn_b") for e in ("grad_cam", "smooth_grad", "lime")]


def generate_labels(config: dict) -> zarr.Group:
    """index, explain and fuse in-process, as `generate-labels` runs them (config needs a fuse section)."""
    run_stages(config)
    fuse.run(config, store_path(config))
    return zarr.open_group(str(store_path(config)), mode="r+", use_consolidated=False)


def run_stages(config: dict) -> zarr.Group:
    path = store_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with StageProgress(disable=True) as progress:
        index.run(config, path, progress)
        return explain.run(config, path, progress)


def saliency_arrays(group: zarr.Group) -> dict[str, np.ndarray]:
    names = [f(m, e) for m, e in MEMBERS for f in (saliency_name, scale_name, q99_name)]
    names += [score_name(m) for m in ("cnn_a", "cnn_b")] + [INDEX_TARGET]
    return {name: group[name][:] for name in names}
