"""The generic training loop: exact resume, schedules, non-finite loss, outputs on disk, and the CLI."""
from __future__ import annotations

import pytest
import torch

from core.config import typed
from core.schema import PretrainConfig, TrainSection
from tests.helpers.training import augment_section, pretrain_config, tiny_pretrain_net, train_section, write_store
from training.__main__ import main as cli_main
from training.datasets import PsslStoreDataset
from training.datasets.transforms import build_transforms
from training.distributed import DistContext
from training.loss import SegmentationLoss
from training.trainer import Trainer, TrainingError, lr_factor, param_groups

SOLO = DistContext(rank=0, world_size=1, device=torch.device("cpu"))
CLASSES = 64  # the loop does not care how many; fewer keeps these tests fast (store targets are < 63)


def make_trainer(store, out_dir, seed: int = 0, **train) -> Trainer:
    dataset = PsslStoreDataset(store, CLASSES, CLASSES, build_transforms(augment_section(crop=32), CLASSES))
    torch.manual_seed(seed)
    loss = SegmentationLoss(CLASSES, background_index=CLASSES - 1, ignore_index=CLASSES)
    return Trainer(tiny_pretrain_net(CLASSES), loss, dataset, TrainSection.model_validate(train_section(**train)),
                   out_dir, SOLO)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    store = write_store(tmp_path, n=6)
    uninterrupted = make_trainer(store, tmp_path / "a", workers=1).fit()
    assert len(uninterrupted) == 6  # 2 epochs x 3 steps of batch 2

    stopped = make_trainer(store, tmp_path / "b", workers=1, max_steps=2)
    stopped.fit()
    assert stopped.step == 2 and stopped.position == 4  # mid-epoch
    resumed = make_trainer(store, tmp_path / "b", seed=123, workers=1)  # other init: the checkpoint must win
    resumed.load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    history = resumed.fit()
    assert [step for step, _ in history] == list(range(1, 7))
    for (step, expected), (_, got) in zip(uninterrupted[2:], history[2:]):
        assert got == pytest.approx(expected, abs=1e-6), f"step {step}"


def test_outputs_on_disk_load_with_weights_only(tmp_path):
    trainer = make_trainer(write_store(tmp_path, n=4), tmp_path / "out", epochs=2)
    trainer.fit()
    checkpoints = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert checkpoints == ["epoch_001.pt", "epoch_002.pt", "last.pt"]
    state = torch.load(tmp_path / "out" / "checkpoints" / "epoch_002.pt", weights_only=True)
    assert state["progress"] == {"epoch": 2, "position": 0, "step": 4, "world_size": 1}
    assert any((tmp_path / "out" / "tensorboard").iterdir())
    assert (tmp_path / "out" / "loss_curve.png").stat().st_size > 1000


def test_backbone_trains_at_a_tenth_of_the_lr():
    model = tiny_pretrain_net()
    groups = {group["name"]: group for group in param_groups(model, lr=0.01, backbone_lr_mult=0.1)}
    assert groups["backbone"]["lr"] == pytest.approx(0.001) and groups["head"]["lr"] == 0.01
    assert len(groups["backbone"]["params"]) == len(list(model.backbone.parameters()))


def test_poly_schedule_with_warmup():
    settings = TrainSection.model_validate(train_section(warmup_steps=10, warmup_start_factor=0.1))
    assert lr_factor(0, 100, settings) == pytest.approx(0.1)
    assert lr_factor(5, 100, settings) == pytest.approx((1 - 0.05) ** 0.9 * 0.55)
    assert lr_factor(50, 100, settings) == pytest.approx(0.5 ** 0.9)
    assert lr_factor(100, 100, settings) == 0.0
    constant = TrainSection.model_validate(train_section(schedule="constant", warmup_steps=0))
    assert lr_factor(99, 100, constant) == 1.0


def test_gradient_accumulation_takes_one_step_per_window(tmp_path):
    trainer = make_trainer(write_store(tmp_path, n=8), tmp_path / "out", epochs=1, accumulate=2)
    assert trainer.steps_per_epoch == 2
    before = trainer.model.head.weight.detach().clone()
    assert len(trainer.fit()) == 2
    assert not torch.equal(before, trainer.model.head.weight)


def test_non_finite_loss_names_the_step_and_the_images(tmp_path):
    trainer = make_trainer(write_store(tmp_path, n=4), tmp_path / "out")
    with torch.no_grad():
        trainer.model.head.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match=r"loss is nan at step 1 \(epoch 1, rank 0\).*images: .*n0000000\d_\d\.png"):
        trainer.fit()


def test_resume_into_a_model_of_another_class_count_is_refused(tmp_path):
    store = write_store(tmp_path, n=4)
    make_trainer(store, tmp_path / "out", epochs=1).fit()
    dataset = PsslStoreDataset(store, CLASSES, CLASSES, build_transforms(augment_section(crop=32), CLASSES))
    other = Trainer(tiny_pretrain_net(21), SegmentationLoss(21, ignore_index=255), dataset,
                    TrainSection.model_validate(train_section()), tmp_path / "other", SOLO)
    with pytest.raises(TrainingError, match="does not fit this model"):
        other.load_checkpoint(tmp_path / "out" / "checkpoints" / "last.pt")


def write_yaml(path, config) -> str:
    import yaml
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("case, message", [
    ("no_labels", r"^error: store .* has no labels \(pssl/mask or pssl/weight missing\)"),
    ("class_mismatch", r"^error: class count mismatch: the store has target class 1000 but num_classes=1001"),
    ("missing_image", r"^error: image file not found: .*n00000001_1.png"),
    ("unknown_model", r"^error: model.name: .*unknown model 'unet'"),
])
def test_cli_bad_input_is_one_line_and_exit_1(tmp_path, capsys, case, message):
    store = write_store(tmp_path, n=2, labels=case != "no_labels",
                        targets=[1, 1000] if case == "class_mismatch" else None)
    if case == "missing_image":
        (tmp_path / "images" / "n00000001_1.png").unlink()
    config = pretrain_config(store, tmp_path / "out", model="unet" if case == "unknown_model" else "stdc1_seg")
    assert cli_main(["pretrain", "--config", write_yaml(tmp_path / "c.yaml", config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_cli_pretrains_the_real_network_and_resumes(tmp_path, capsys):
    """End to end with STDC1-Seg: a run of 1 epoch, then the same command with 2 epochs resumes it."""
    store = write_store(tmp_path, n=2)  # one step of batch 2 per epoch
    config = {**pretrain_config(store, tmp_path / "out", epochs=1), "num_classes": 32, "ignore_index": 32}
    config_path = write_yaml(tmp_path / "c.yaml", config)
    assert cli_main(["pretrain", "--config", config_path]) == 0
    out = tmp_path / "out"
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"epoch_001.pt", "last.pt"}
    assert (out / "config.yaml").is_file() and (out / "loss_curve.png").is_file()
    assert cli_main(["pretrain", "--config", config_path, "train.epochs=2"]) == 0
    printed = capsys.readouterr().out
    assert "resumed from" in printed and "at step 1" in printed
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"] == 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert {"loss/total", "loss/main", "loss/detail", "lr/backbone", "speed/images_per_s"} <= set(events.Tags()["scalars"])
    assert events.Tags()["images"] == ["samples/image_label_prediction"]


def test_a_minimal_train_section_is_completed_by_the_schema_defaults(tmp_path):
    """`train: {epochs, batch_size, lr}` passes the schema, and the trainer runs on the schema's defaults."""
    store = write_store(tmp_path, n=4)
    minimal = typed({**pretrain_config(store, tmp_path / "out"), "train": {"epochs": 1, "batch_size": 2, "lr": 0.01}},
                    PretrainConfig)
    assert minimal.train == TrainSection(epochs=1, batch_size=2, lr=0.01)
    assert minimal.train.accumulate == 1 and minimal.train.schedule == "poly"
    dataset = PsslStoreDataset(store, CLASSES, CLASSES, build_transforms(minimal.augment, CLASSES))
    loss = SegmentationLoss(CLASSES, background_index=CLASSES - 1, ignore_index=CLASSES)
    trainer = Trainer(tiny_pretrain_net(CLASSES), loss, dataset, minimal.train, tmp_path / "run", SOLO)
    trainer.fit()
    assert trainer.total_steps == 2 and trainer.step == 2
