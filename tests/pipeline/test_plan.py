"""`python -m pipeline plan`: passes counted from each explainer's settings, rates and sizes read from the
benchmarks' JSON figures, totals worked out by hand, and the command run from another working folder."""
from __future__ import annotations

import ast
import inspect
import json
import os
import sys

import pytest

from pipeline import plan
from tests.helpers.cli import ROOT, error_line, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import tiny_config


def write_figures(folder):
    """Benchmark figures with round numbers, so every total below can be worked out by hand."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_explain.json").write_text(json.dumps({"model": "cnn_a", "sustained_images_per_second": {
        "forward": [90, 100, 110], "input_gradient": [10, 10, 10], "layer_gradient": [60, 40, 50]}}))
    (folder / "bench_objectness.json").write_text(json.dumps({"threads": 1, "cores": 2, "seconds_per_image": {
        "512": {"min": 0.4, "median": 0.5, "max": 0.6}, "320": {"min": 0.1, "median": 0.2, "max": 0.3}}}))
    (folder / "labels_only.json").write_text(json.dumps({"per_image_kb_at_scale": {"labels_only": 30.0}, (
        "map_kb_per_image_and_model"): {"smooth_grad": 20.0, "lime": 4.0, "objectness": 9.0}}))
    return folder


def test_passes_follow_each_explainers_settings():
    assert plan.explainer_passes("grad_cam", {}) == plan.Passes(layer_gradient=1)
    assert plan.explainer_passes("smooth_grad", {"samples": 32}).backwards == 32
    assert plan.explainer_passes("lime", {"samples": 1000}) == plan.Passes(forward=1000)
    scales = plan.explainer_passes("multi_scale_cam", {"scales": [1.0, 0.5, 2.0], "flip": True})
    assert scales.layer_gradient == pytest.approx(2 * (1 + 0.25 + 4))
    assert plan.explainer_passes("smooth_grad", None).input_gradient == 16  # the explainer's own default


def test_a_plan_from_the_benchmarks_figures_adds_up_to_the_hand_computed_totals(tmp_path):
    """cnn_a has its own rates (medians 100 / 10 / 50 img/s), cnn_b the same FLOPs so the same rates. Per model
    and image: scores 1/100 + grad_cam 1/50 + smooth_grad 2/10 + lime 16/100 = 0.39 s; two models 0.78 s;
    100 images 78 s. Store: per model a 1x1 float32 CAM grid (0.004 KB) + 20 + 4 KB, twice, + 30 labels-only."""
    results = write_figures(tmp_path / "results")
    config = tiny_config(tmp_path, write_image_folder(tmp_path / "data", classes=1, per_class=1))
    made = plan.make_plan(config, images=100, results=results)
    seconds = {(r.model, r.explainer): r.seconds_per_image for r in made.rows}
    assert seconds[("cnn_a", "scores")] == pytest.approx(0.01) and seconds[("cnn_b", "grad_cam")] == pytest.approx(0.02)
    assert seconds[("cnn_a", "smooth_grad")] == pytest.approx(0.2) and seconds[("cnn_b", "lime")] == pytest.approx(0.16)
    assert made.device_hours() == pytest.approx(78 / 3600)
    assert made.full_kb == pytest.approx(2 * (0.004 + 20 + 4) + 30) and made.labels_only_kb == 30


def test_the_object_model_is_one_more_pass_and_map_from_its_figures(tmp_path):
    """Its pass costs the measured median, scaled by pixels from the nearest size and divided by the one-thread
    runs the machine holds at once (2 cores / 1 thread): 0.5 / 2 at 512; at 32, from 320: 0.2 x (32/320)^2 / 2."""
    results = write_figures(tmp_path / "results")
    assert plan.objectness_seconds(512, results)[0] == pytest.approx(0.25)
    assert plan.objectness_seconds(640, results)[0] == pytest.approx(0.5 * (640 / 512) ** 2 / 2)
    data = write_image_folder(tmp_path / "data", classes=1, per_class=1)
    without = plan.make_plan(tiny_config(tmp_path, data), images=100, results=results)
    with_objects = plan.make_plan(tiny_config(tmp_path, data, objectness=True), images=100, results=results)
    (row,) = [r for r in with_objects.rows if r.explainer == "objectness"]
    assert row.passes == plan.Passes(forward=1) and row.seconds_per_image == pytest.approx(0.001)
    assert with_objects.full_kb == pytest.approx(without.full_kb + 9.0)
    assert "2 models x 3 explainers = 6 members + object model tiny_obj," in plan.format_plan(with_objects)


def test_measured_plan_of_a_tiny_config_adds_up(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=3)
    made = plan.make_plan(tiny_config(tmp_path, data), devices=2, measure=4, work_dir=tmp_path,
                          results=write_figures(tmp_path / "results"))
    assert made.images == 6 and made.images_from.startswith("data.root")
    assert len(made.rows) == 2 * (1 + 3)  # per model: the scores pass and three explainers
    lime = next(r for r in made.rows if r.explainer == "lime")
    scores = next(r for r in made.rows if r.explainer == "scores" and r.model == lime.model)
    assert lime.passes.forwards == 16 and lime.seconds_per_image == pytest.approx(16 * scores.seconds_per_image)
    assert all(r.seconds_per_image > 0 for r in made.rows)
    text = plan.format_plan(made)
    assert "measured here" in text and "2 devices" in text and "labels-only" in text


def test_the_plan_reads_no_markdown():
    """Measurements come from JSON figures: the module imports no regular expressions and names no .md file."""
    source = inspect.getsource(plan)
    imported = {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module for node in ast.walk(ast.parse(source))
                                            if isinstance(node, ast.ImportFrom)}
    assert "re" not in imported and ".md" not in source


def test_the_cli_plans_from_another_working_folder_and_names_a_bad_rates_file(tmp_path):
    """Run where a user might, outside the checkout (the package importable, as an installed one is): the
    shipped figures under results/ are found from the module's own place."""
    config = tiny_config(tmp_path, write_image_folder(tmp_path / "data", classes=1, per_class=1))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = run_cli(pipeline_command(config, tmp_path, "plan") + ["--images", "2000", "--devices", "4"],
                     cwd=elsewhere, env=env)
    assert result.returncode == 0, result.stderr
    assert "2,000 images (--images)" in result.stdout and "| cnn_b | " in result.stdout and "4 devices" in result.stdout
    assert f"{ROOT / 'results' / 'bench_explain.json'}" in result.stdout
    result = run_cli(pipeline_command(config, tmp_path, "plan") + ["--rates", str(tmp_path / "none.json")],
                     cwd=elsewhere, env=env)
    assert "none.json" in error_line(result)


@pytest.mark.slow
def test_the_cli_plans_imagenet_without_data_or_weights(tmp_path):
    result = run_cli([sys.executable, "-m", "pipeline", "plan", "--config", "conf/imagenet.yaml", "--images", "1000"])
    assert result.returncode == 0, result.stderr
    assert "1,000 images" in result.stdout and "| resnet50 | 8.18 | lime | 1000 | 0 |" in result.stdout
