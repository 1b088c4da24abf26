"""Fine-tuning on VOC: pre-trained checkpoint loading with the heads dropped, a short real fine-tune
on a generated VOC-layout dataset, evaluation of its checkpoint, and the CLI's one-line errors."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from core.config import ConfigError, load_config
from tests.helpers.models import TinySegNet
from tests.helpers.voc import write_voc
from training.__main__ import main as training_cli
from training.checkpoints import CheckpointError, describe, load_complete, load_pretrained
from core.config import typed
from core.schema import FinetuneConfig
from training.finetune import train_settings
from training.finetune_voc import run, run_eval
from training.models import create_model

REPO = Path(__file__).resolve().parents[2]
PSSL_CONFIG = REPO / "conf" / "finetune_voc_stdc2_pssl.yaml"


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: two intra-op threads made each step ~25x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(tmp_path: Path, voc_root: Path, **overrides) -> dict:
    """The shipped PSSL config, shrunk to a CPU-sized run on the generated dataset."""
    config = load_config(PSSL_CONFIG, [
        f"run.out_dir={tmp_path / 'run'}", f"data.root={voc_root}", "augment.crop=32", "augment.scale=[0.75,1.5]",
        "train.iterations=60", "train.batch_size=4", "train.lr=0.05", "train.workers=0",
        "train.checkpoint_every_steps=0", "train.log_every_steps=50", "train.image_every_steps=0",
        "eval.workers=0", "eval.num_samples=3", "eval.progress_every=0",
    ])
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config


def test_1001_class_checkpoint_loads_into_21_classes_with_heads_skipped(tmp_path):
    torch.manual_seed(0)
    pretrained = create_model("stdc1_seg", 1001)
    torch.manual_seed(1)
    model = create_model("stdc1_seg", 21)
    initial = copy.deepcopy(model.state_dict())
    # As the trainer writes it: the weights under "model", next to optimiser and progress state.
    torch.save({"model": pretrained.state_dict(), "progress": {"step": 5}}, tmp_path / "pssl.pt")
    report = load_pretrained(model, tmp_path / "pssl.pt")

    source, loaded = pretrained.state_dict(), model.state_dict()
    mismatched = {name for name in source if source[name].shape != initial[name].shape}
    assert mismatched and all(source[name].shape[0] == 1001 for name in mismatched)
    assert set(report.skipped) == mismatched  # exactly the class layers of the heads
    assert all("shape" in reason for reason in report.skipped.values())
    for name in mismatched:  # skipped: the 21-class layers keep their own initialisation
        assert torch.equal(loaded[name], initial[name])
    backbone = [name for name in source if name.startswith("backbone.")]
    assert backbone and all(torch.equal(loaded[name], source[name]) for name in backbone)
    assert len(report.loaded) == len(source) - len(mismatched)
    listing = describe(report)
    assert all(name in listing for name in mismatched) and f"skipped {len(mismatched)}" in listing


def test_plain_and_ddp_state_dicts_load_and_bad_files_fail_in_one_line(tmp_path):
    torch.manual_seed(0)
    source = TinySegNet(num_classes=1001)
    model = TinySegNet(num_classes=21)
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "ddp.pt")
    report = load_pretrained(model, tmp_path / "ddp.pt")
    assert set(report.skipped) == {"head.weight", "head.bias"}
    assert torch.equal(model.backbone[0].weight, source.backbone[0].weight)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_complete(model, tmp_path / "ddp.pt")  # evaluation needs every tensor
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt unusable") as error:
        load_pretrained(model, tmp_path / "junk.pt")
    assert "\n" not in str(error.value)
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained(model, tmp_path / "absent.pt")


def test_schedule_is_counted_in_iterations(tmp_path):
    config = small_config(tmp_path, tmp_path)
    settings, samples = train_settings(typed(config, FinetuneConfig), world_size=2)
    assert settings.epochs == 1 and samples == 60 * 4 * 2
    config["train"]["epochs"] = 3
    with pytest.raises(ConfigError, match="train.iterations"):
        typed(config, FinetuneConfig)


def test_short_finetune_from_a_pretrained_checkpoint_learns_voc_classes(tmp_path, one_thread):
    voc_root = write_voc(tmp_path / "data", num_images=8)
    torch.manual_seed(0)
    torch.save(TinySegNet(num_classes=1001).state_dict(), tmp_path / "pssl.pt")
    config = small_config(tmp_path, voc_root, **{"model.pretrained": str(tmp_path / "pssl.pt"),
                                                 "data.val_split": "train"})
    out_dir = run(config, model=TinySegNet())

    results = json.loads((out_dir / "results.json").read_text())
    assert results["model"] == "TinySegNet" and results["init"] == "pretrained" and set(results["skipped"]) == {"head.weight", "head.bias"}
    assert results["train_steps"] == 60 and results["train_loss"]["last"] < results["train_loss"]["first"]
    assert set(results["modes"]) == {"single scale", "flip", "ms+flip"}
    single = results["modes"]["single scale"]
    # Chance (all background) scores about 0.15 over the 4 classes present; the network learns them all.
    assert single["mIoU"] > 0.6, single
    assert all(single["per_class_iou"][name] > 0.3 for name in ("aeroplane", "cat", "person"))
    assert results["modes"]["ms+flip"]["mIoU"] > 0.5
    assert "| **mIoU** |" in (out_dir / "results.md").read_text()
    assert (out_dir / "samples.png").stat().st_size > 0 and (out_dir / "config.yaml").is_file()

    # eval-voc on the run's last checkpoint reproduces the same scores.
    evaluated = run_eval(config, model=TinySegNet())
    again = json.loads((evaluated / "results.json").read_text())
    assert again["modes"]["single scale"]["mIoU"] == pytest.approx(single["mIoU"])
    assert again["checkpoint"].endswith("last.pt")


def test_pretrained_init_without_a_checkpoint_is_a_config_error(tmp_path):
    config = small_config(tmp_path, write_voc(tmp_path / "data", num_images=2))
    with pytest.raises(ConfigError, match="CHECKPOINT"):
        run(config, model=TinySegNet())


def check_layout_message(message: str, root: Path) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert str(root) in message
    for part in ("JPEGImages", "SegmentationClassAug", "train_aug", "ImageSets/Segmentation"):
        assert part in message


def test_cli_without_voc_exits_1_with_one_line_naming_the_layout(tmp_path, capsys):
    missing = tmp_path / "no_voc"
    overrides = [f"data.root={missing}", f"run.out_dir={tmp_path / 'run'}"]
    result = subprocess.run([sys.executable, "-m", "training", "finetune-voc", "--config", str(PSSL_CONFIG),
                             *overrides], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    check_layout_message(result.stderr.strip(), missing)
    assert training_cli(["eval-voc", "--config", str(PSSL_CONFIG), *overrides]) == 1
    check_layout_message(capsys.readouterr().err.strip(), missing)


@pytest.mark.slow
def test_stdc1_finetune_through_the_cli(tmp_path):
    """The real network (aux and detail heads) through `python -m training finetune-voc`, briefly."""
    voc_root = write_voc(tmp_path / "data", num_images=4)
    torch.manual_seed(0)
    torch.save({"model": create_model("stdc1_seg", 1001).state_dict()}, tmp_path / "pssl.pt")
    config_path = tmp_path / "config.yaml"
    config = small_config(tmp_path, voc_root, **{"model.name": "stdc1_seg", "model.pretrained": str(tmp_path / "pssl.pt"),
                                                 "augment.crop": 64, "train.iterations": 6, "train.batch_size": 2})
    config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "training", "finetune-voc", "--config", str(config_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped" in result.stdout and "1001" in result.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["train_steps"] == 6 and results["skipped"]
    assert 0.0 <= results["modes"]["ms+flip"]["mIoU"] <= 1.0


def test_a_smaller_label_set_in_the_voc_layout_sizes_heads_and_tables(tmp_path, one_thread):
    from training.palette import VOC_CLASSES
    from training.voc import VOCDataError

    voc_root = write_voc(tmp_path / "data", num_images=4)  # classes 0, 1, 8, 15 occur
    names = list(VOC_CLASSES[:16])
    config = small_config(tmp_path, voc_root, **{"model.init": "backbone", "data.val_split": "train",
                                                 "data.class_names": names, "train.iterations": 10})
    out_dir = run(config, model=TinySegNet(num_classes=16))
    per_class = json.loads((out_dir / "results.json").read_text())["modes"]["single scale"]["per_class_iou"]
    assert list(per_class) == names
    config["data"]["class_names"] = names[:8]  # labels 8 and 15 no longer fit: refused, not mislearned
    config["run"]["out_dir"] = str(tmp_path / "eight_classes")
    with pytest.raises(VOCDataError, match="neither a class id"):
        run(config, model=TinySegNet(num_classes=8))
