"""Fine-tune on Pascal VOC 2012 + Aug and report the paper's table: mIoU, flip, ms+flip, per class.

`finetune-voc` initialises the network as `model.init` says (`pretrained`: every tensor of a PSSL
checkpoint whose shape matches, the 1001-class heads skipped and listed; `backbone`: ImageNet
STDCNet weights from a local file if given, else random), trains with the generic Trainer for
`train.iterations` steps, then evaluates. `eval-voc` evaluates a fine-tuned checkpoint. Both write
under `run.out_dir`: results.json, results.md, samples.png (image | ground truth | prediction).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.config import ConfigError, typed
from core.schema import FinetuneConfig, TrainSection
from training.checkpoints import describe, load_complete, load_pretrained
from training.datasets.transforms import Compose, Normalize, build_transforms
from training.distributed import init_distributed, shutdown_distributed
from training.evaluate import EvaluationResult, evaluate_dataset, inference_modes
from training.loss import SegmentationLoss
from training.palette import VOC_CLASSES, render_grid
from training.sample_images import PredictionRenderer
from training.task_setup import build_model, resume_path, write_config
from training.trainer import CHECKPOINT_DIR, LAST, Trainer
from training.voc import IGNORE_INDEX, VOCSegmentation

def class_names(config: FinetuneConfig) -> tuple[str, ...]:
    """VOC's 21 classes unless `data.class_names` lists another label set in the same layout."""
    return tuple(config.data.class_names or VOC_CLASSES)


def voc_dataset(config: FinetuneConfig, which: str, transforms, seed: int = 0,
                samples_per_epoch: int | None = None) -> VOCSegmentation:
    """The `train` or `val` split named in the `data` section."""
    data = config.data
    return VOCSegmentation(data.root, getattr(data, f"{which}_split"), getattr(data, f"{which}_labels"), transforms,
                           seed=seed, num_classes=len(class_names(config)), samples_per_epoch=samples_per_epoch)


def eval_transforms(config: FinetuneConfig) -> Compose:
    """Whole images, only normalised (as the reference's val pipeline, whose padding we do in inference)."""
    return Compose([Normalize(config.augment.mean, config.augment.std)])


def train_settings(config: FinetuneConfig, world_size: int) -> tuple[TrainSection, int]:
    """The Trainer's settings for one epoch of `train.iterations` steps, and that epoch's sample count."""
    settings = config.train.model_copy(update={"epochs": 1, "iterations": None})
    return settings, config.train.iterations * settings.batch_size * settings.accumulate * world_size


def initialise(model: nn.Module, config: FinetuneConfig, verbose: bool) -> dict:
    """Apply `model.init` (every process does, so all start alike); return what was loaded, for the results."""
    init = config.model.init
    if init not in ("pretrained", "backbone"):
        raise ConfigError(f"model.init must be pretrained or backbone, not {init!r}")
    if init == "backbone":  # build_model already loaded model.backbone_weights if given
        return {"init": init, "backbone_weights": config.model.backbone_weights}
    path = config.model.pretrained
    if not path:
        raise ConfigError("model.init is 'pretrained' but model.pretrained is not set: pass the PSSL checkpoint "
                          "(make finetune-voc CHECKPOINT=path, or model.pretrained=path)")
    report = load_pretrained(model, path)
    if verbose:
        print(f"finetune-voc: initialised from {path}: {describe(report)}")
    return {"init": init, "pretrained": str(path), "loaded": len(report.loaded), "skipped": report.skipped}


def evaluate_and_write(model: nn.Module, model_name: str, config: FinetuneConfig, device: torch.device,
                       extra: dict) -> EvaluationResult:
    """Evaluate on the val split in every configured mode; write results.json/.md and samples.png."""
    dataset = voc_dataset(config, "val", eval_transforms(config))
    settings = config.eval
    result = evaluate_dataset(model, dataset, inference_modes(settings.modes),
                              class_names(config), device=device, size_divisor=settings.size_divisor,
                              num_samples=settings.num_samples, num_workers=settings.workers,
                              progress_every=settings.progress_every)
    out_dir = Path(config.run.out_dir)
    metadata = {"model": model_name, "split": config.data.val_split, **extra}
    json_path, markdown_path = result.write(out_dir, metadata=metadata)
    if result.samples:
        render_grid(result.samples, out_dir / "samples.png")
    print(f"{model_name} on VOC {config.data.val_split} ({result.num_images} images):\n"
          f"{result.markdown()}results: {json_path}, {markdown_path}")
    return result


def run(config: FinetuneConfig | dict, model: nn.Module | None = None) -> Path:
    """Fine-tune as configured (under torchrun, as one of several processes), then evaluate on rank 0.

    `model` replaces the network named by `model.name` (tests pass a tiny one).
    """
    config = typed(config, FinetuneConfig)
    ctx = init_distributed()
    try:
        out_dir = Path(config.run.out_dir)
        settings, samples = train_settings(config, ctx.world_size)
        augment = config.augment
        train_set = voc_dataset(config, "train", build_transforms(augment, IGNORE_INDEX), settings.seed, samples)
        voc_dataset(config, "val", eval_transforms(config))  # a missing val split fails now, not after training
        torch.manual_seed(settings.seed)
        model_name = config.model.name if model is None else type(model).__name__
        classes = len(class_names(config))
        pretrained = config.model.pretrained if config.model.init == "pretrained" else None
        model = model if model is not None else build_model(config, classes, (pretrained,))
        init = initialise(model, config, verbose=ctx.is_main)
        loss = SegmentationLoss(classes, head_weights=config.loss.head_weights,
                                detail_weight=config.loss.detail_weight, ignore_index=IGNORE_INDEX)
        render = PredictionRenderer(augment.mean, augment.std, classes, IGNORE_INDEX, background=0)
        trainer = Trainer(model, loss, train_set, settings, out_dir, ctx, render=render)
        checkpoint = resume_path(config, out_dir)
        if checkpoint is not None:
            trainer.load_checkpoint(checkpoint)
            if ctx.is_main:
                print(f"finetune-voc: resumed from {checkpoint} at step {trainer.step}")
        if ctx.is_main:
            write_config(out_dir, config)
            print(f"finetune-voc: {len(train_set.ids)} {train_set.split} images, {trainer.total_steps} steps of "
                  f"{settings.batch_size * settings.accumulate * ctx.world_size} crops")
        history = trainer.fit()
        if ctx.is_main:
            extra = {**init, "train_steps": trainer.step,
                     "train_loss": {"first": history[0][1], "last": history[-1][1]} if history else None}
            evaluate_and_write(trainer.model, model_name, config, ctx.device, extra)
        return out_dir
    finally:
        shutdown_distributed()


def run_eval(config: FinetuneConfig | dict, model: nn.Module | None = None) -> Path:
    """Evaluate `eval.checkpoint` (default: run.out_dir's last checkpoint), which must fit the network entirely."""
    config = typed(config, FinetuneConfig)
    device = init_distributed().device
    try:
        out_dir = Path(config.run.out_dir)
        voc_dataset(config, "val", eval_transforms(config))  # fail on missing data before building anything
        checkpoint = config.eval.checkpoint or out_dir / CHECKPOINT_DIR / LAST
        model_name = config.model.name if model is None else type(model).__name__
        model = model if model is not None else build_model(config, len(class_names(config)), (checkpoint,))
        load_complete(model, checkpoint)
        evaluate_and_write(model.to(device), model_name, config, device, {"checkpoint": str(checkpoint)})
        return out_dir
    finally:
        shutdown_distributed()
