"""Strict configs: every key and value is checked before any work, and a mistake is one line."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.yardsticks.settings import YardsticksConfig
from core.config import ConfigError, load_config
from core.schema import (BenchConfig, CityscapesFinetuneConfig, FinetuneConfig, KnownAnswerConfig,
                         KnownAnswerReportConfig, LabelVariantsConfig, PipelineConfig, PretrainConfig, SegModelSection)
from pipeline.cli import config_context
from training.models import MODELS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_OF = {"sample.yaml": PipelineConfig, "imagenet.yaml": PipelineConfig, "real_photos.yaml": PipelineConfig,
             "bench.yaml": BenchConfig, "known_answer.yaml": KnownAnswerConfig,
             "known_answer_report.yaml": KnownAnswerReportConfig, "label_variants.yaml": LabelVariantsConfig,
             "pssl_paper.yaml": PipelineConfig, "label_variants_objectness.yaml": LabelVariantsConfig,
             "composite.yaml": PipelineConfig, "yardsticks.yaml": YardsticksConfig}
SCHEMA_OF.update({p.name: PretrainConfig for p in (ROOT / "conf").glob("pretrain_*.yaml")})
SCHEMA_OF.update({p.name: FinetuneConfig for p in (ROOT / "conf").glob("finetune_voc_*.yaml")})
SCHEMA_OF.update({p.name: CityscapesFinetuneConfig for p in (ROOT / "conf").glob("finetune_cityscapes_*.yaml")})
CONTEXT = {**config_context(), "seg_models": MODELS}


def kept(written, loaded) -> bool:
    """Whether every value the YAML writes is what the loaded config holds: a mapping key by key (the keys it
    leaves out take defaults), a list item by item, a classifier named by a string as that arch."""
    if isinstance(written, dict):
        return isinstance(loaded, dict) and all(key in loaded and kept(value, loaded[key])
                                                for key, value in written.items())
    if isinstance(written, list):
        return isinstance(loaded, list) and len(written) == len(loaded) and all(map(kept, written, loaded))
    if isinstance(written, str) and isinstance(loaded, dict):
        return loaded.get("arch") == written
    return written == loaded


def test_a_value_the_loader_changed_or_dropped_is_caught():
    loaded = {"fuse": {"fg_threshold": 0.3, "bg_threshold": 0.1}, "explain": {"models": [{"arch": "a"}]}}
    assert kept({"fuse": {"fg_threshold": 0.3}, "explain": {"models": ["a"]}}, loaded)
    assert not kept({"fuse": {"fg_threshold": 0.4}}, loaded)
    assert not kept({"fuse": {"smooth": 1}}, loaded)
    assert not kept({"explain": {"models": ["a", "b"]}}, loaded)


@pytest.mark.parametrize("name", sorted(SCHEMA_OF))
def test_every_shipped_config_is_valid_and_loads_as_written(name):
    written = yaml.safe_load((ROOT / "conf" / name).read_text())
    loaded = load_config(ROOT / "conf" / name, schema=SCHEMA_OF[name], context=CONTEXT)
    assert isinstance(loaded, SCHEMA_OF[name])
    assert kept(written, json.loads(loaded.model_dump_json())), f"conf/{name} does not load as it is written"


def test_the_project_ships_no_config_without_a_schema():
    class_maps = {"voc_to_imagenet.yaml"}  # a VOC -> ImageNet class table (benchmarks.voc_seeds), not a config
    assert {p.name for p in (ROOT / "conf").glob("*.yaml")} == set(SCHEMA_OF) | class_maps


@pytest.mark.parametrize("override, message", [
    ("fuse.fg_treshold=0.9", "fuse.fg_treshold: unknown key; did you mean fuse.fg_threshold?"),
    ("explain.modelz=[x]", "explain.modelz: unknown key; did you mean explain.models?"),
    ("fuse.fg_threshold=2", "fuse.fg_threshold: Input should be less than or equal to 1"),
    ("store.shard_size=0", "store.shard_size: Input should be greater than 0"),
    ("store.map_size=-1", "store.map_size: Input should be greater than 0"),
    ("explain.models=[resnet5]", "explain.models: unknown arch 'resnet5'"),
    ("explain.explainers={gradcam: {}}", "unknown explainer 'gradcam' (did you mean 'grad_cam'?)"),
    ("explain.explainers.lime.sample=3", "lime: unknown parameter 'sample' (did you mean 'samples'?)"),
    ("fuse.bg_threshold=0.5", "fuse: needs bg_threshold < fg_threshold"),
    ("fuse.models=[efficientnet_lite3]", "fuse.models: ['efficientnet_lite3'] are not in explain.models"),
    ("fuse.crf.temprature=0.1", "fuse.crf.temprature: unknown key; did you mean fuse.crf.temperature?"),
    ("fuse.threshold_rule=otsuu", "fuse.threshold_rule: unknown rule 'otsuu' (did you mean 'otsu'?)"),
    ("store.unit_levels.smooth_grad=256", "unit_levels must be 1..255 (levels of a uint8), got {'smooth_grad': 256}"),
    ("store.unit_levels={smoothgrad: 15}", "store.unit_levels: unknown explainer 'smoothgrad' (did you mean 'smooth_grad'?)"),
])
def test_a_bad_override_names_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(ROOT / "conf" / "sample.yaml", [override], schema=PipelineConfig, context=CONTEXT)
    assert message in str(error.value) and f"(override {override})" in str(error.value)


def test_a_misspelt_key_in_a_training_yaml_names_the_file(tmp_path):
    config = yaml.safe_load((ROOT / "conf" / "pretrain_sample.yaml").read_text())
    config["train"]["learning_rate"] = config["train"].pop("lr")
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"train.learning_rate: unknown key.* \(in .*pretrain.yaml\)"):
        load_config(path, schema=PretrainConfig, context=CONTEXT)


def test_the_cli_refuses_a_misspelt_yaml_key_in_seconds_before_any_work(tmp_path):
    config = yaml.safe_load((ROOT / "conf" / "sample.yaml").read_text())
    config["run"]["root"] = str(tmp_path / "runs")
    config["fuse"]["fg_treshold"] = 0.9
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pipeline", "generate-labels", "--config", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - started
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "fuse.fg_treshold: unknown key; did you mean fuse.fg_threshold?" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written, Ray never started
    assert seconds < 30, f"refusing a bad key took {seconds:.1f} s"


def test_a_known_answer_range_must_be_a_pair():
    with pytest.raises(ConfigError, match=r"world.instances: List should have at most 2 items .*\(override"):
        load_config(ROOT / "conf" / "known_answer.yaml", ["world.instances=[1, 2, 3]"], schema=KnownAnswerConfig)


def test_the_schema_knows_the_model_variants():
    from training.models import VARIANTS

    assert set(VARIANTS) == set(SegModelSection.model_fields["variant"].annotation.__args__[0].__args__)


def test_the_training_cli_refuses_a_bad_value(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training", "pretrain", "--config", "conf/pretrain_sample.yaml",
                             f"run.out_dir={tmp_path / 'out'}", "train.lr=-1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "train.lr: Input should be greater than 0 (override train.lr=-1)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_embedded_default_is_the_schemas_default():
    """conf/sample.yaml restates the label recipe with comments; only the schema holds it, so they must agree."""
    sample = load_config(ROOT / "conf" / "sample.yaml", schema=PipelineConfig, context=CONTEXT)
    defaults = PipelineConfig()
    for section in ("explain", "fuse", "ray", "data"):
        ours = getattr(sample, section).model_dump(exclude={"batch_size"} if section == "explain" else set())
        assert ours == getattr(defaults, section).model_dump(exclude={"batch_size"} if section == "explain" else set())


def test_a_config_of_ones_own_needs_only_the_keys_one_changes(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"run": {"name": "mine", "root": str(tmp_path / "runs")},
                                    "data": {"source": "imagefolder", "root": str(tmp_path / "photos")}}))
    config = load_config(path, schema=PipelineConfig, context=CONTEXT)
    assert config.store == PipelineConfig().store and config.fuse == PipelineConfig().fuse
    assert [m.display_name for m in config.explain.models] == [f"efficientnet_lite{i}" for i in range(3)]
    result = subprocess.run([sys.executable, "-m", "pipeline", "generate-labels", "--config", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "photos" in result.stderr
    assert not (tmp_path / "runs").exists()  # the missing folder is found before anything is created
