"""Fine-tune on a downstream dataset and report the paper's table: mIoU, flip, ms+flip, per class.

One driver for every downstream dataset (Pascal VOC, Cityscapes): a `DownstreamTask` says only what
differs (the config schema, the dataset, the class names, the palette of the sample pictures).
`run` initialises the network as `model.init` says (`pretrained`: every tensor of a PSSL checkpoint
whose shape matches, the 1001-class heads skipped and listed; `backbone`: ImageNet STDCNet weights
from a local file if given, else random), trains with the generic Trainer for `train.iterations`
steps, then evaluates. `run_eval` evaluates a fine-tuned checkpoint. Both write under
`run.out_dir`: results.json, results.md, samples.png (image | ground truth | prediction).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.config import ConfigError, typed
from core.schema import FinetuneConfig, TrainSection
from training.checkpoints import describe, load_complete, load_pretrained
from training.datasets.labelled import LabelledImages
from training.datasets.transforms import Compose, Normalize, build_transforms
from training.distributed import init_distributed, shutdown_distributed
from training.evaluate import EvaluationResult, evaluate_dataset, inference_modes
from training.loss import SegmentationLoss
from training.palette import render_grid
from training.sample_images import PredictionRenderer
from training.task_setup import build_model, resume_path, write_config
from training.trainer import CHECKPOINT_DIR, LAST, Trainer

IGNORE_INDEX = 255  # the ignore label of every downstream dataset, and of crop padding


@dataclass(frozen=True)
class DownstreamTask:
    """What one downstream dataset brings to the shared driver."""
    name: str  # in messages: "VOC", "Cityscapes"
    command: str  # the CLI command that fine-tunes on it
    schema: type[FinetuneConfig]
    # (config, "train" or "val", transforms, augmentation seed, samples per epoch or None) -> the split
    dataset: Callable[[FinetuneConfig, str, Compose, int, int | None], LabelledImages]
    class_names: Callable[[FinetuneConfig], tuple[str, ...]]
    palette: np.ndarray  # [256, 3] colours of samples.png
    background: int | None  # the background class, drawn black in TensorBoard pictures (None: there is none)


def eval_transforms(config: FinetuneConfig) -> Compose:
    """Whole images, only normalised (as the reference's val pipeline, whose padding we do in inference)."""
    return Compose([Normalize(config.augment.mean, config.augment.std)])


def val_dataset(task: DownstreamTask, config: FinetuneConfig) -> LabelledImages:
    return task.dataset(config, "val", eval_transforms(config), 0, None)


def train_settings(config: FinetuneConfig, world_size: int) -> tuple[TrainSection, int]:
    """The Trainer's settings for one epoch of `train.iterations` steps, and that epoch's sample count."""
    settings = config.train.model_copy(update={"epochs": 1, "iterations": None})
    return settings, config.train.iterations * settings.batch_size * settings.accumulate * world_size


def initialise(model: nn.Module, config: FinetuneConfig, task: DownstreamTask, verbose: bool) -> dict:
    """Apply `model.init` (every process does, so all start alike); return what was loaded, for the results."""
    init = config.model.init
    if init not in ("pretrained", "backbone"):
        raise ConfigError(f"model.init must be pretrained or backbone, not {init!r}")
    if init == "backbone":  # build_model already loaded model.backbone_weights if given
        return {"init": init, "backbone_weights": config.model.backbone_weights}
    path = config.model.pretrained
    if not path:
        raise ConfigError("model.init is 'pretrained' but model.pretrained is not set: pass the PSSL checkpoint "
                          f"(make {task.command} CHECKPOINT=path, or model.pretrained=path)")
    report = load_pretrained(model, path)
    if verbose:
        print(f"{task.command}: initialised from {path}: {describe(report)}")
    return {"init": init, "pretrained": str(path), "loaded": len(report.loaded), "skipped": report.skipped}


def segmentation_loss(config: FinetuneConfig, num_classes: int) -> SegmentationLoss:
    ohem = config.loss.ohem
    return SegmentationLoss(num_classes, head_weights=config.loss.head_weights,
                            detail_weight=config.loss.detail_weight, ignore_index=IGNORE_INDEX,
                            ohem=None if ohem is None else (ohem.thresh, ohem.min_kept))


def evaluate_and_write(model: nn.Module, model_name: str, config: FinetuneConfig, task: DownstreamTask,
                       device: torch.device, extra: dict) -> EvaluationResult:
    """Evaluate on the val split in every configured mode; write results.json/.md and samples.png."""
    settings = config.eval
    result = evaluate_dataset(model, val_dataset(task, config), inference_modes(settings.modes),
                              task.class_names(config), device=device, size_divisor=settings.size_divisor,
                              num_samples=settings.num_samples, num_workers=settings.workers,
                              progress_every=settings.progress_every, average=settings.average)
    out_dir = Path(config.run.out_dir)
    metadata = {"model": model_name, "dataset": task.name, "split": config.data.val_split, **extra}
    json_path, markdown_path = result.write(out_dir, metadata=metadata)
    if result.samples:
        render_grid(result.samples, out_dir / "samples.png", palette=task.palette)
    print(f"{model_name} on {task.name} {config.data.val_split} ({result.num_images} images):\n"
          f"{result.markdown()}results: {json_path}, {markdown_path}")
    return result


def run(config: FinetuneConfig | dict, task: DownstreamTask, model: nn.Module | None = None) -> Path:
    """Fine-tune as configured (under torchrun, as one of several processes), then evaluate on rank 0.

    `model` replaces the network named by `model.name` (tests pass a tiny one).
    """
    config = typed(config, task.schema)
    ctx = init_distributed()
    try:
        out_dir = Path(config.run.out_dir)
        settings, samples = train_settings(config, ctx.world_size)
        augment = config.augment
        train_set = task.dataset(config, "train", build_transforms(augment, IGNORE_INDEX), settings.seed, samples)
        val_dataset(task, config)  # a missing val split fails now, not after training
        torch.manual_seed(settings.seed)
        model_name = config.model.name if model is None else type(model).__name__
        classes = len(task.class_names(config))
        pretrained = config.model.pretrained if config.model.init == "pretrained" else None
        model = model if model is not None else build_model(config, classes, (pretrained,))
        init = initialise(model, config, task, verbose=ctx.is_main)
        render = PredictionRenderer(augment.mean, augment.std, classes, IGNORE_INDEX, background=task.background)
        trainer = Trainer(model, segmentation_loss(config, classes), train_set, settings, out_dir, ctx,
                          render=render)
        checkpoint = resume_path(config, out_dir)
        if checkpoint is not None:
            trainer.load_checkpoint(checkpoint)
            if ctx.is_main:
                print(f"{task.command}: resumed from {checkpoint} at step {trainer.step}")
        if ctx.is_main:
            write_config(out_dir, config)
            print(f"{task.command}: {len(train_set.pairs)} {task.name} {config.data.train_split} images, "
                  f"{trainer.total_steps} steps of {settings.batch_size * settings.accumulate * ctx.world_size} crops")
        history = trainer.fit()
        if ctx.is_main:
            extra = {**init, "train_steps": trainer.step,
                     "train_loss": {"first": history[0][1], "last": history[-1][1]} if history else None}
            evaluate_and_write(trainer.model, model_name, config, task, ctx.device, extra)
        return out_dir
    finally:
        shutdown_distributed()


def run_eval(config: FinetuneConfig | dict, task: DownstreamTask, model: nn.Module | None = None) -> Path:
    """Evaluate `eval.checkpoint` (default: run.out_dir's last checkpoint), which must fit the network entirely."""
    config = typed(config, task.schema)
    device = init_distributed().device
    try:
        out_dir = Path(config.run.out_dir)
        val_dataset(task, config)  # fail on missing data before building anything
        checkpoint = config.eval.checkpoint or out_dir / CHECKPOINT_DIR / LAST
        model_name = config.model.name if model is None else type(model).__name__
        model = model if model is not None else build_model(config, len(task.class_names(config)), (checkpoint,))
        load_complete(model, checkpoint)
        evaluate_and_write(model.to(device), model_name, config, task, device, {"checkpoint": str(checkpoint)})
        return out_dir
    finally:
        shutdown_distributed()
