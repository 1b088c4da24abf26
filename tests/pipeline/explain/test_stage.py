"""The index + explain stages on real Ray, real Zarr, real Captum/LIME and random-weight CNNs."""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from core.images import load_rgb
from core.store import (ENCODING_FULL, ENCODING_GRID, ENCODING_UNIT, EXPLAIN_STAGE, INDEX_CLASS_ID, INDEX_ERROR,
                        INDEX_PATH, INDEX_STATUS, INDEX_TARGET, OBJECTNESS, STATUS_BAD, STATUS_OK, map_encoding,
                        prediction_name, progress_name, q99_name, saliency_name, scale_name, score_name,
                        store_objectness, unit_levels)
from pipeline.explain import map_settings
from pipeline.explain.stage import ModelWorker
from pipeline.explain.map_settings import ExplainConfigError
from pipeline.fuse.stage import pipeline_config
from pipeline.fuse.rules import normalise
from pipeline.fuse.kernel import q99_of_maps
from pipeline.explain.runtime import RunOptions
from pipeline.maps.stored import StoredMaps
from tests.helpers.bad_inputs import write_corpus
from tests.helpers.images import write_image_folder
from tests.helpers.models import TinyObjectNet
from tests.helpers.pipeline import MEMBERS, OBJECT_MODEL, RAY_TEST_DIR, run_stages, saliency_arrays, tiny_config


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data"), classes=2, per_class=3)


@pytest.fixture(scope="module")
def reference(ray_local, dataset, tmp_path_factory):
    return run_stages(tiny_config(tmp_path_factory.mktemp("reference"), dataset, objectness=True))


@pytest.fixture(scope="module")
def full(ray_local, dataset, tmp_path_factory):
    """The same run keeping every map whole (store.compact=false), the layout of stores before encodings."""
    return run_stages(tiny_config(tmp_path_factory.mktemp("full"), dataset, store={"map_size": 16, "shard_size": 2,
                                                                                   "compact": False}))


def test_every_member_is_written_with_image_aligned_shards(full):
    n, size, k = 6, 16, 2
    assert list(full[INDEX_CLASS_ID][:]) == [0, 0, 0, 1, 1, 1]
    assert list(full[INDEX_TARGET][:]) == [0, 0, 0, 1, 1, 1]
    assert (full[INDEX_STATUS][:] == STATUS_OK).all()
    for model, explainer in MEMBERS:
        maps = full[saliency_name(model, explainer)]
        assert map_encoding(maps) == ENCODING_FULL
        assert maps.dtype == np.float16 and maps.shape == (n, size, size)
        assert maps.chunks == (1, size, size) and maps.shards == (k, size, size)
        scale = full[scale_name(model, explainer)][:]
        # stored as map / max-abs; a random net's Grad-CAM may be all zero (relu), then so is its scale
        assert np.array_equal(np.abs(maps[:]).reshape(n, -1).max(axis=1), (scale > 0).astype(np.float16))
        if explainer != "grad_cam":
            assert (scale > 0).all()
        # the q99 that fusion divides by is stored beside the map, for exactly the stored values
        q99 = full[q99_name(model, explainer)][:]
        np.testing.assert_array_equal(q99, q99_of_maps(maps[:]))
        np.testing.assert_allclose(q99, np.quantile(np.maximum(maps[:].astype(np.float32), 0).reshape(n, -1), 0.99,
                                                    axis=1), rtol=1e-6)
    for model in ("cnn_a", "cnn_b"):
        assert full[progress_name(EXPLAIN_STAGE, model)][:].all()
        probs = full[score_name(model)][:]
        assert ((probs > 0) & (probs < 1)).all()


def expected_object_maps(group, input_size: int = 32, size: int = 16) -> np.ndarray:
    """The tiny object model run eagerly in torch on each whole image, as the contract says: resize, (x - 128) / 256."""
    net, out = TinyObjectNet().eval(), []
    for path in group[INDEX_PATH][:]:
        pixels = torch.from_numpy(load_rgb(Path(group.attrs["data_root"]) / path, min_side=1)).permute(2, 0, 1)[None].float()
        x = (torch.nn.functional.interpolate(pixels, size=(input_size, input_size), mode="bilinear", antialias=True,
                                             align_corners=False) - 128) / 256
        with torch.no_grad():
            raw = net(x)
        out.append(torch.nn.functional.interpolate(raw, size=(size, size), mode="bilinear", antialias=True,
                                                   align_corners=False)[0, 0].clamp(0, 1).numpy())
    return np.stack(out)


def test_the_object_model_is_one_more_member(reference):
    """Made on ONNX Runtime from an ONNX file exported at 64 px and run at 32; stored as 8-bit levels of the map."""
    name = saliency_name(OBJECT_MODEL, OBJECTNESS)
    stored = reference[name]
    assert store_objectness(reference) == OBJECT_MODEL and OBJECT_MODEL not in reference.attrs["models"]
    assert map_encoding(stored) == ENCODING_UNIT and unit_levels(stored) == 255 and stored.dtype == np.uint8
    assert stored.shape == (6, 16, 16) and stored.shards == (2, 16, 16)
    assert reference[progress_name(EXPLAIN_STAGE, OBJECT_MODEL)][:].all()
    np.testing.assert_array_equal(reference[q99_name(OBJECT_MODEL, OBJECTNESS)][:], np.ones(6, np.float32))
    maps = StoredMaps(reference, OBJECT_MODEL, OBJECTNESS)[:].astype(np.float32)
    expected = expected_object_maps(reference)
    assert 0.05 < (expected > 0.5).mean() < 0.95  # the images hold both bright "objects" and background
    np.testing.assert_allclose(maps, expected, atol=0.5 / 255 + 2e-3)


def test_compact_store_regenerates_the_full_maps(reference, full):
    """Grad-CAM kept at its 4x4 grid decodes bit-identically; the others keep what fusion reads to 1/255."""
    for model, explainer in MEMBERS:
        stored, whole = reference[saliency_name(model, explainer)], full[saliency_name(model, explainer)][:]
        q99 = full[q99_name(model, explainer)][:]
        np.testing.assert_array_equal(reference[q99_name(model, explainer)][:], q99)
        decoded = StoredMaps(reference, model, explainer)[:]
        if explainer == "grad_cam":
            assert map_encoding(stored) == ENCODING_GRID and stored.shape == (6, 4, 4)
            np.testing.assert_array_equal(decoded, whole)
        else:
            levels = {"smooth_grad": 15}.get(explainer, 255)  # store.unit_levels' default
            assert map_encoding(stored) == ENCODING_UNIT and stored.dtype == np.uint8 and unit_levels(stored) == levels
            np.testing.assert_allclose(normalise(decoded, q99), normalise(whole, q99), atol=0.5 / levels + 1e-3)
    assert StoredMaps(reference, "cnn_a", "lime")[3].shape == (16, 16)


def test_cam_explainers_run_the_split_network_and_match_eager(reference, dataset, tmp_path):
    """With ONNX Runtime (runtime auto, CPU) Grad-CAM runs the trunk-on-ONNX-Runtime network, SmoothGrad the eager
    network, LIME the no-grad forward; the stored Grad-CAM grids equal an all-eager run's to 1e-5 of their scale."""
    config = tiny_config(tmp_path, dataset)
    config["explain"]["runtime"] = "eager"
    eager = run_stages(config)
    for model in ("cnn_a", "cnn_b"):
        grids, expected = reference[saliency_name(model, "grad_cam")][:], eager[saliency_name(model, "grad_cam")][:]
        np.testing.assert_allclose(grids, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    explain = config["explain"]
    worker = ModelWorker(str(reference.store.root), {m["name"]: m for m in explain["models"]}, explain["explainers"],
                         2, 0, 10, RunOptions())  # runtime auto, as the reference store was made
    net, batch = worker._use("cnn_a").net, torch.rand(2, 3, 32, 32)
    assert worker.split is not None
    assert worker._runner(worker.explainers["grad_cam"], net, batch)[0] is worker.split
    assert worker._runner(worker.explainers["smooth_grad"], net, batch)[0] is net
    assert worker._runner(worker.explainers["lime"], net, batch)[0] is worker.forward


def test_same_config_gives_bit_identical_saliency(reference, dataset, tmp_path):
    again = run_stages(tiny_config(tmp_path, dataset))
    for name, values in saliency_arrays(reference).items():
        np.testing.assert_array_equal(again[name][:], values, err_msg=name)


def test_rerun_skips_finished_shards(ray_local, dataset, tmp_path):
    config = tiny_config(tmp_path, dataset)
    group = run_stages(config)
    marker = group[saliency_name("cnn_a", "lime")]
    marker[0, 0, 0] = 7.0  # a finished shard is never rewritten, so the marker survives the re-run
    run_stages(config)
    assert marker[0, 0, 0] == 7.0


def test_an_object_model_added_later_runs_alone_and_resumes(ray_local, dataset, tmp_path, reference):
    """Classifiers done, object maps not: only the object model works (its own items); then nothing is redone."""
    config = tiny_config(tmp_path, dataset)
    group = run_stages(config)
    marker = group[saliency_name("cnn_a", "lime")]
    marker[0, 0, 0] = 7.0
    with_objects = tiny_config(tmp_path, dataset, objectness=True)
    run_stages(with_objects)
    assert marker[0, 0, 0] == 7.0
    objects = group[saliency_name(OBJECT_MODEL, OBJECTNESS)]
    np.testing.assert_array_equal(objects[:], reference[saliency_name(OBJECT_MODEL, OBJECTNESS)][:])
    objects[1, 0, 0] = 77
    run_stages(with_objects)
    assert objects[1, 0, 0] == 77


def test_a_changed_object_model_setting_on_done_object_maps_is_refused_or_redone(dataset, tmp_path, reference):
    """The object model's settings are recorded with the maps: another input size on a store whose object maps
    are done is refused in one line; with explain.overwrite the object maps (only) are to be redone."""
    config = tiny_config(tmp_path, dataset, objectness=True)
    config["explain"]["objectness"]["input_size"] = 48
    typed_config = pipeline_config(config)
    with pytest.raises(ExplainConfigError, match=rf"explain.objectness.{OBJECT_MODEL}.input_size: 32 -> 48\)"):
        map_settings.check_accepted(typed_config, reference)
    config["explain"]["overwrite"] = True
    assert map_settings.check_accepted(pipeline_config(config), reference) == [OBJECT_MODEL]
    config["explain"]["objectness"].update(input_size=32, name="another_object_model")  # a new member: nothing done
    assert map_settings.check_accepted(pipeline_config(config), reference) == []


def test_unknown_classes_take_the_ensemble_top1(ray_local, dataset, tmp_path):
    (tmp_path / "list.txt").write_text("class_0/img_0.png\nclass_1/img_1.png 3\n")
    group = run_stages(tiny_config(tmp_path, dataset, data={"source": "filelist",
                                                            "file_list": str(tmp_path / "list.txt")}))
    mean = np.mean([group[prediction_name(m)][0].astype(np.float32) for m in ("cnn_a", "cnn_b")], axis=0)
    assert group[INDEX_TARGET][0] == mean.argmax()
    assert group[INDEX_TARGET][1] == 3
    assert group[prediction_name("cnn_a")][1].max() == 0  # known classes need no stored probabilities


def test_bad_inputs_are_recorded_and_do_not_touch_other_images(ray_local, dataset, tmp_path, reference):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    expected = write_corpus(data / "class_1")
    group = run_stages(tiny_config(tmp_path, data, objectness=True))
    paths = list(group[INDEX_PATH][:])
    status, errors = group[INDEX_STATUS][:], group[INDEX_ERROR][:]
    for name, loads in expected.items():
        row = paths.index(f"class_1/{name}")
        assert status[row] == (STATUS_OK if loads else STATUS_BAD), name
        assert bool(errors[row]) != loads, (name, errors[row])
        if not loads:
            assert not group[saliency_name("cnn_a", "grad_cam")][row].any()
            assert not group[saliency_name(OBJECT_MODEL, OBJECTNESS)][row].any()
    reference_paths = list(reference[INDEX_PATH][:])
    for model, explainer in [*MEMBERS, (OBJECT_MODEL, OBJECTNESS)]:
        maps, expected = StoredMaps(group, model, explainer), StoredMaps(reference, model, explainer)
        for row, path in enumerate(reference_paths):  # batch-mates differ: float noise may move a level by one
            np.testing.assert_allclose(maps[paths.index(path)].astype(np.float32), expected[row].astype(np.float32),
                                       atol=2e-3 + 1 / 255, err_msg=f"{model}/{explainer} {path}")


def _in_this_ray_session(process: psutil.Process) -> bool:
    """Only workers under the test session's raylet: other Ray runs on the machine are left alone."""
    try:
        return any(RAY_TEST_DIR in part for part in process.parent().cmdline())
    except (psutil.Error, AttributeError):
        return False


def _kill_first_worker_in(method: str, stop: threading.Event) -> int | None:
    while not stop.is_set():
        for process in psutil.process_iter(["cmdline"]):
            if any("ModelWorker." in part and method in part for part in process.info["cmdline"] or []) \
                    and _in_this_ray_session(process):
                process.kill()
                return process.pid
        time.sleep(0.02)
    return None


def test_a_worker_killed_mid_shard_is_retried_and_nothing_is_lost(reference, dataset, tmp_path):
    stop, outcome = threading.Event(), {}

    def run():
        try:
            outcome["group"] = run_stages(tiny_config(tmp_path, dataset))
        finally:
            stop.set()

    worker = threading.Thread(target=run)
    worker.start()
    killed = _kill_first_worker_in("explain", stop)
    worker.join(timeout=300)
    assert killed is not None, "no explain worker was seen to kill"
    for name, values in saliency_arrays(reference).items():
        np.testing.assert_array_equal(outcome["group"][name][:], values, err_msg=name)
