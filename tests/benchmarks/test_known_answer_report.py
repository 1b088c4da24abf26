"""The known-answer report's label part end to end on a tiny world: real generator, classifiers trained
for one epoch, the real generate-labels / fuse commands (Ray, Captum, LIME, Zarr), real scoring."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from benchmarks.known_answer import labels, report
from benchmarks.known_answer.commands import as_overrides
from core.config import apply_overrides, load_config

TINY = {
    "world.set": {"root": None, "classes": ["cross", "ring"], "classification": {"image_size": 48, "per_class": {"train": 6, "val": 4}},
                  "segmentation": {"images": {"train": 2, "val": 2, "aug_extra": 0}},
                  "classifiers": {"output": None, "epochs": 1}},
    "labels.tuning.per_class": 3,
    "labels.heldout.per_class": 2,
    "labels.thresholds": {"start": 0.1, "stop": 0.9, "step": 0.2},
    "labels.overlay_images": 2,
    "labels.pipeline.store": {"map_size": 48, "shard_size": 4},
    "labels.pipeline.explain.explainers": {"grad_cam": {}, "smooth_grad": {"samples": 2},
                                           "lime": {"samples": 8, "segments": 10, "batch_size": 8}},
}


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("ka_report")
    settings = dict(TINY)
    settings["world.set"] = {**TINY["world.set"], "root": str(root / "world"),
                             "classifiers": {"output": str(root / "classifiers"), "epochs": 1}}
    settings.update({"work_dir": str(root / "work"), "out_dir": str(root / "results"),
                     "labels.pipeline.ray.temp_dir": "/tmp/ray_pssl_tests"})
    config = apply_overrides(load_config("conf/known_answer_report.yaml"), as_overrides(settings))
    path = report.run(config, "test", labels_only=True)
    return path, json.loads((path.parent / "report.json").read_text())


def table_rows(markdown: str) -> dict[str, list[str]]:
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| subset") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].replace("**", "").replace(" (tuned default)", "")] = cells
    return rows


def test_report_lists_every_member_model_explainer_and_the_ensemble(tiny_report):
    path, _ = tiny_report
    rows = table_rows(path.read_text())
    models, explainers = ["ka_convmixer", "ka_resnet", "ka_vgg"], ["grad_cam", "lime", "smooth_grad"]
    expected = [f"{m}/{e}" for m in models for e in explainers] + [f"{m} (all explainers)" for m in models]
    expected += [f"{e} (all models)" for e in explainers] + [labels.ENSEMBLE]
    missing = [name for name in expected if name not in rows]
    assert not missing, f"rows missing from the label table: {missing}"
    for name in expected:
        held_out_miou = float(rows[name][3].strip("*"))
        assert 0.0 <= held_out_miou <= 100.0, (name, rows[name])


def test_report_states_the_ensemble_verdict_and_tunes_on_tuning_images_only(tiny_report):
    path, data = tiny_report
    text = path.read_text()
    match = re.search(r"Ensemble vs best single member: ([+-]\d+\.\d) points \(target ≥ \+2\): (met|missed)", text)
    assert match, "the ensemble verdict line is missing"
    verdict = data["ensemble_verdict"]
    assert match.group(2) == ("met" if verdict["target_met"] else "missed")
    assert float(match.group(1)) == pytest.approx(verdict["gain"], abs=0.051)
    result = data["labels"]
    # each row's threshold is the tuning images' best, not the held-out images'
    for name, row in result["heldout"].items():
        sweep = [r for r in result["sweeps"]["tuning"] if r["subset"] == name]
        assert len(sweep) == 5
        assert row["threshold"] == result["thresholds"][name] == max(sweep, key=lambda r: r["miou"])["threshold"]
    assert result["subsets"]["tuning"]["split"] == "train" and result["subsets"]["heldout"]["split"] == "val"
    assert result["subsets"]["tuning"]["images"] == 6 and result["subsets"]["heldout"]["images"] == 4
    assert 0.0 <= result["fused_quality"]["heldout"]["decided_fraction"] <= 1.0
    for picture in (result["plots"]["heldout"], result["plots"]["tuning"], result["overlay"]):
        assert (path.parent / picture).stat().st_size > 1000


def test_every_command_in_the_report_ran_and_is_listed(tiny_report):
    path, data = tiny_report
    text = path.read_text()
    names = [entry["name"] for entry in data["commands"]]
    assert names == ["classifiers", "labels_tuning", "fuse_tuning", "labels_heldout"]
    for entry in data["commands"]:
        assert entry["status"] == 0 and f"`{entry['command']}`" in text


def test_product_subsets_name_and_count_every_models_times_explainers_choice():
    subsets = labels.product_subsets(["a", "b"], ["x", "y", "z"])
    assert len(subsets) == (2 ** 2 - 1) * (2 ** 3 - 1)
    assert subsets["a/x"]["kind"] == "member" and subsets["a (all explainers)"]["kind"] == "model"
    assert subsets["x (all models)"]["members"] == [("a", "x"), ("b", "x")]
    assert subsets[labels.ENSEMBLE]["kind"] == labels.ENSEMBLE and len(subsets[labels.ENSEMBLE]["members"]) == 6
    assert subsets["a × x+y"]["kind"] == "mix"


def test_run_all_runs_each_benchmark_and_gathers_tables_plots_and_failures(tmp_path):
    from benchmarks import run_all

    writer = ("import pathlib, sys; out = pathlib.Path(sys.argv[1]); out.parent.mkdir(parents=True, exist_ok=True); "
              "out.write_text('# Bench ' + out.stem + '\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n\\n![plot](plot.png)\\n')")
    config = {"report": str(tmp_path / "results" / "REPORT.md"), "logs": str(tmp_path / "results" / "logs"),
              "benchmarks": [{"name": "good", "args": ["-c", writer, str(tmp_path / "results" / "sub" / "good.md")],
                              "output": str(tmp_path / "results" / "sub" / "good.md")},
                             {"name": "broken", "args": ["-c", "raise SystemExit(3)"],
                              "output": str(tmp_path / "results" / "broken.md")}]}
    config_path = tmp_path / "bench.yaml"
    config_path.write_text(yaml.safe_dump(config))
    assert run_all.main(["--config", str(config_path)]) == 1  # one benchmark failed
    text = (tmp_path / "results" / "REPORT.md").read_text()
    assert "## Bench good" in text and "| 1 | 2 |" in text  # its table, its heading one level down
    assert "![plot](sub/plot.png)" in text  # the link resolves from the report's folder
    assert "FAILED (exit 3" in text and "No result file" in text
    assert (tmp_path / "results" / "bench_times.png").stat().st_size > 1000
    assert "Not run by it" not in text
    # a later --report-only keeps the recorded times and statuses, and says they are older
    assert run_all.main(["--config", str(config_path), "--report-only"]) == 0
    text = (tmp_path / "results" / "REPORT.md").read_text()
    assert "FAILED (exit 3" in text and "Not run by it, shown as their latest run: good, broken." in text
