"""PSSL pre-training: a segmentation network learns the 1001-class pseudo labels (classes + background).

Builds the dataset, network and weighted loss from the resolved config, then hands them to the
generic Trainer. Writes under `run.out_dir`: config.yaml (resolved), checkpoints/, tensorboard/
and loss_curve.png.
"""
from __future__ import annotations

from pathlib import Path

import torch

from core.config import typed
from core.schema import PretrainConfig
from training.checkpoints import describe, load_pretrained
from training.datasets import build_dataset
from training.datasets.transforms import build_transforms
from training.distributed import init_distributed, shutdown_distributed
from training.loss import SegmentationLoss
from training.sample_images import PredictionRenderer
from training.task_setup import build_model, resume_path, write_config
from training.trainer import Trainer


def initialise_from(model: torch.nn.Module, path: str | None, verbose: bool) -> None:
    """`model.pretrained`: start pre-training from a checkpoint or PaddleSeg .pdparams (every tensor that fits)."""
    if not path:
        return
    report = load_pretrained(model, path)
    if verbose:
        print(f"pretrain: initialised from {path}: {describe(report)}")


def run(config: PretrainConfig | dict) -> Path:
    """Train as configured (under torchrun, as one of several processes); return the output folder."""
    config = typed(config, PretrainConfig)
    ctx = init_distributed()
    try:
        out_dir = Path(config.run.out_dir)
        settings = config.train
        num_classes, ignore_index = config.num_classes, config.ignore_index
        augment = config.augment
        dataset = build_dataset(config.data, build_transforms(augment, ignore_index), num_classes, ignore_index,
                                settings.seed)
        if ctx.is_main:
            print(f"pretrain: {len(dataset)} labelled images; skipped: {dataset.describe_skipped()}")
        torch.manual_seed(settings.seed)
        pretrained = config.model.pretrained
        model = build_model(config, num_classes, (pretrained,))
        initialise_from(model, pretrained, verbose=ctx.is_main)
        loss = SegmentationLoss(num_classes, background_index=num_classes - 1,
                                background_alpha=config.loss.background_alpha,
                                head_weights=config.loss.head_weights,
                                detail_weight=config.loss.detail_weight,
                                ignore_index=ignore_index)
        render = PredictionRenderer(augment.mean, augment.std, num_classes, ignore_index,
                                    background=num_classes - 1)
        trainer = Trainer(model, loss, dataset, settings, out_dir, ctx, render=render)
        checkpoint = resume_path(config, out_dir)
        if checkpoint is not None:
            trainer.load_checkpoint(checkpoint)
            if ctx.is_main:
                print(f"pretrain: resumed from {checkpoint} at step {trainer.step} "
                      f"(epoch {trainer.epoch + 1}, sample {trainer.position})")
        if ctx.is_main:
            write_config(out_dir, config)
        history = trainer.fit()
        if ctx.is_main and history:
            print(f"pretrain: {trainer.step} steps, loss {history[0][1]:.4f} (step {int(history[0][0])}) -> "
                  f"{history[-1][1]:.4f} (step {int(history[-1][0])}); outputs in {out_dir}")
        return out_dir
    finally:
        shutdown_distributed()

