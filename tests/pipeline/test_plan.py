"""`python -m pipeline plan`: passes counted from each explainer's settings, totals, store sizes, measured rates."""
from __future__ import annotations

import pytest

from pipeline import plan
import sys

from tests.helpers.cli import pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import tiny_config


def test_passes_follow_each_explainers_settings():
    assert plan.explainer_passes("grad_cam", {}) == plan.Passes(layer_gradient=1)
    assert plan.explainer_passes("smooth_grad", {"samples": 32}).backwards == 32
    assert plan.explainer_passes("lime", {"samples": 1000}) == plan.Passes(forward=1000)
    scales = plan.explainer_passes("multi_scale_cam", {"scales": [1.0, 0.5, 2.0], "flip": True})
    assert scales.layer_gradient == pytest.approx(2 * (1 + 0.25 + 4))
    assert plan.explainer_passes("smooth_grad", None).input_gradient == 16  # the explainer's own default


def test_the_object_model_is_one_more_pass_and_map_timed_from_its_benchmark(tmp_path):
    """Its pass costs what results/bench_objectness.md measured, scaled by pixels from the nearest size and
    divided by the one-thread runs the machine holds at once; its map adds OBJECTNESS_KB to the store."""
    timing = tmp_path / "bench_objectness.md"
    timing.write_text("Command: x (2 photos x 3 runs, 1 ONNX Runtime thread(s); load average at the end 1.0 / 1.0 / "
                      "1.0 on 2 shared cores).\n\n| input size | s |\n|---:|---|\n| 512 | 0.40 / 0.50 / 0.60 | 0.67 |\n"
                      "| 320 | 0.10 / 0.20 / 0.30 | – |\n")
    assert plan.objectness_seconds(512, timing)[0] == pytest.approx(0.25)
    assert plan.objectness_seconds(640, timing)[0] == pytest.approx(0.50 * (640 / 512) ** 2 / 2)
    data = write_image_folder(tmp_path / "data", classes=1, per_class=1)
    without = plan.make_plan(tiny_config(tmp_path, data), images=100)
    with_objects = plan.make_plan(tiny_config(tmp_path, data, objectness=True), images=100)
    (row,) = [r for r in with_objects.rows if r.explainer == "objectness"]
    assert row.passes == plan.Passes(forward=1) and row.seconds_per_image > 0
    assert with_objects.full_kb == pytest.approx(without.full_kb + plan.OBJECTNESS_KB)
    assert "2 models x 3 explainers = 6 members + object model tiny_obj," in plan.format_plan(with_objects)


def test_measured_plan_of_a_tiny_config_adds_up(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=3)
    config = tiny_config(tmp_path, data)
    made = plan.make_plan(config, devices=2, measure=4, work_dir=tmp_path)
    assert made.images == 6 and made.images_from.startswith("data.root")
    assert len(made.rows) == 2 * (1 + 3)  # per model: the scores pass and three explainers
    lime = next(r for r in made.rows if r.explainer == "lime")
    scores = next(r for r in made.rows if r.explainer == "scores" and r.model == lime.model)
    assert lime.passes.forwards == 16 and lime.seconds_per_image == pytest.approx(16 * scores.seconds_per_image)
    assert all(r.seconds_per_image > 0 for r in made.rows)
    assert made.device_hours() == pytest.approx(sum(r.seconds_per_image for r in made.rows) * 6 / 3600)
    assert made.full_kb > made.labels_only_kb == plan.LABELS_ONLY_KB
    text = plan.format_plan(made)
    assert "measured here" in text and "2 devices" in text and "labels-only" in text


def test_the_cli_prints_the_plan_and_names_a_bad_rates_file(tmp_path):
    config = tiny_config(tmp_path, write_image_folder(tmp_path / "data", classes=1, per_class=1))
    result = run_cli(pipeline_command(config, tmp_path, "plan") + ["--images", "2000", "--devices", "4"])
    assert result.returncode == 0, result.stderr
    assert "2,000 images (--images)" in result.stdout and "| cnn_b | " in result.stdout and "4 devices" in result.stdout
    result = run_cli(pipeline_command(config, tmp_path, "plan") + ["--rates", str(tmp_path / "none.md")])
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0 and "none.md" in result.stderr


@pytest.mark.slow
def test_the_cli_plans_imagenet_without_data_or_weights(tmp_path):
    result = run_cli([sys.executable, "-m", "pipeline", "plan", "--config", "conf/imagenet.yaml", "--images", "1000"])
    assert result.returncode == 0, result.stderr
    assert "1,000 images" in result.stdout and "| resnet50 | 8.18 | lime | 1000 | 0 |" in result.stdout
