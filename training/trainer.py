"""The generic segmentation training loop, shared by PSSL pre-training and fine-tuning.

Batches are dicts with `image`, `label`, optional `weight` and `path`; the loss is any callable
`loss(outputs, label, weight) -> (total, parts)`. The loop owns what every run needs: SGD with a
smaller backbone learning rate, poly/constant decay with warmup, AMP on CUDA, gradient accumulation,
DDP, TensorBoard, and checkpoints that resume exactly: model, optimiser, scheduler, scaler, the
position in the seeded data order and every RNG state, all as tensors and plain Python values so
`torch.load(weights_only=True)` reads them.
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.config import ConfigError
from core.errors import PsslError
from core.schema import TrainSection
from training.datasets.sampler import ResumableSampler
from training.distributed import DistContext

CHECKPOINT_DIR, LAST = "checkpoints", "last.pt"


class TrainingError(PsslError, RuntimeError):
    """A run that cannot go on (non-finite loss, unusable checkpoint); the message says where and why."""


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float) -> list[dict]:
    """Parameters under `model.backbone` train at lr x backbone_lr_mult, the rest at lr."""
    backbone = getattr(model, "backbone", None)
    backbone_ids = {id(p) for p in backbone.parameters()} if isinstance(backbone, nn.Module) else set()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"name": "head", "params": [p for p in params if id(p) not in backbone_ids], "lr": lr},
              {"name": "backbone", "params": [p for p in params if id(p) in backbone_ids],
               "lr": lr * backbone_lr_mult}]
    return [group for group in groups if group["params"]]


def lr_factor(step: int, total_steps: int, settings: TrainSection) -> float:
    """Multiplier of the base lr after `step` optimiser steps: linear warmup, then poly or constant."""
    factor = 1.0
    if settings.schedule == "poly":
        factor = (1.0 - min(step, total_steps) / total_steps) ** settings.power
    if step < settings.warmup_steps:
        start = settings.warmup_start_factor
        factor *= start + (1.0 - start) * step / settings.warmup_steps
    return factor


def rng_state() -> dict:
    numpy_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                      "has_gauss": int(numpy_state[3]), "gauss": float(numpy_state[4])},
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def main_logits(outputs) -> torch.Tensor:
    return outputs.logits[0] if hasattr(outputs, "logits") else outputs


class Trainer:
    def __init__(self, model: nn.Module, loss_fn: Callable, dataset, settings: TrainSection,
                 out_dir: str | Path, dist_context: DistContext,
                 render: Callable[[dict, torch.Tensor], torch.Tensor] | None = None):
        """`render(batch, main_logits)` -> uint8 [3,H,W] picture of the first sample, for TensorBoard."""
        self.settings, self.ctx, self.render = settings, dist_context, render
        self.out_dir = Path(out_dir)
        self.device = dist_context.device
        if dist_context.world_size > 1 and self.device.type == "cuda":
            # As the reference does on several GPUs: BatchNorm statistics over the whole global batch.
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.optimizer = torch.optim.SGD(param_groups(model, settings.lr, settings.backbone_lr_mult),
                                         lr=settings.lr, momentum=settings.momentum,
                                         weight_decay=settings.weight_decay)
        self.sampler = ResumableSampler(dataset, num_replicas=dist_context.world_size, rank=dist_context.rank,
                                        shuffle=True, seed=settings.seed, drop_last=True)
        self.loader = DataLoader(dataset, batch_size=settings.batch_size, sampler=self.sampler,
                                 num_workers=settings.workers, pin_memory=self.device.type == "cuda",
                                 drop_last=True)
        self.steps_per_epoch = self.sampler.num_samples // settings.batch_size // settings.accumulate
        if self.steps_per_epoch < 1:
            raise ConfigError(f"an epoch has {self.sampler.num_samples} samples per process, fewer than "
                              f"train.batch_size x train.accumulate = {settings.batch_size * settings.accumulate}")
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.total_steps, settings))
        self.use_amp = settings.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.network = (DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda"
                                                else None)
                        if dist_context.world_size > 1 else model)
        self.epoch, self.position, self.step = 0, 0, 0
        self.history: list[list[float]] = []  # [step, mean loss over the step's micro-batches]
        self.writer = None
        self.saved_step = -1

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "progress": {"epoch": self.epoch, "position": self.position, "step": self.step,
                             "world_size": self.ctx.world_size},
                "rng": rng_state(), "history": self.history}

    def save_checkpoint(self, name: str) -> Path | None:
        """Rank 0 writes `name` and refreshes last.pt (each via a temporary file, so a kill leaves no half file)."""
        if not self.ctx.is_main:
            return None
        folder = self.out_dir / CHECKPOINT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        for target in (folder / name, folder / LAST):
            temporary = target.with_suffix(".tmp")
            torch.save(state, temporary)
            os.replace(temporary, target)
        self.saved_step = self.step
        self.save_loss_curve()
        return folder / name

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise TrainingError(f"checkpoint to resume from not found: {path}")
        state = torch.load(path, map_location=self.device, weights_only=True)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            first = str(error).strip().splitlines()
            raise TrainingError(f"checkpoint {path} does not fit this model (other network or class count?): "
                                f"{first[1].strip() if len(first) > 1 else first[0]}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        progress = state["progress"]
        self.epoch, self.step = int(progress["epoch"]), int(progress["step"])
        self.position = int(progress["position"])
        if int(progress["world_size"]) != self.ctx.world_size:
            # Each process's position counts its own share; with another process count, restart the epoch.
            self._print(f"checkpoint written by {progress['world_size']} processes, now {self.ctx.world_size}: "
                        f"epoch {self.epoch + 1} restarts from its beginning")
            self.position = 0
        self.history = [list(item) for item in state["history"]]
        self.saved_step = self.step
        set_rng_state(state["rng"])

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self) -> list[list[float]]:
        """Train to the end of the last epoch (or `max_steps`); returns the loss history."""
        settings = self.settings
        if self.ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step or None)
        stop_at = min(self.total_steps, settings.max_steps or self.total_steps)
        bar = tqdm(total=stop_at, initial=min(self.step, stop_at), desc="train", unit="step",
                   disable=not self.ctx.is_main, dynamic_ncols=True)
        self.network.train()
        try:
            while self.epoch < settings.epochs and self.step < stop_at:
                self._run_epoch(stop_at, bar)
            if self.saved_step != self.step:
                self.save_checkpoint(f"step_{self.step:07d}.pt")
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        self.save_loss_curve()
        return self.history

    def _run_epoch(self, stop_at: int, bar) -> None:
        settings = self.settings
        per_step = settings.batch_size * settings.accumulate
        epoch_end = self.steps_per_epoch * per_step  # samples of this process's share used per epoch
        self.sampler.set_position(self.epoch, self.position)
        batches = iter(self.loader)
        tick, images = time.perf_counter(), 0
        while self.position < epoch_end and self.step < stop_at:
            loss, parts = 0.0, {}
            for micro in range(settings.accumulate):
                batch = next(batches)
                outputs, micro_loss, micro_parts = self._forward_backward(
                    batch, last=micro == settings.accumulate - 1)
                loss += micro_loss / settings.accumulate
                for key, value in micro_parts.items():
                    parts[key] = parts.get(key, 0.0) + value / settings.accumulate
                images += len(batch["image"]) * self.ctx.world_size
            self._optimizer_step()
            self.position += per_step
            self.history.append([self.step, loss])
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", epoch=self.epoch + 1)
            if self.step % settings.log_every_steps == 0:
                self._log(loss, parts, images / (time.perf_counter() - tick))
                tick, images = time.perf_counter(), 0
            if settings.image_every_steps and self.step % settings.image_every_steps == 0:
                self._log_image(batch, outputs)
            if (settings.checkpoint_every_steps and self.step % settings.checkpoint_every_steps == 0
                    and self.position < epoch_end):
                self.save_checkpoint(f"step_{self.step:07d}.pt")
        if self.position < epoch_end:
            return  # stopped by max_steps; fit() saves the stopping point
        self.epoch, self.position = self.epoch + 1, 0
        every = settings.checkpoint_every_epochs
        if (every and self.epoch % every == 0) or self.epoch == settings.epochs:
            self.save_checkpoint(f"epoch_{self.epoch:03d}.pt")
        elif settings.checkpoint_every_steps and self.step % settings.checkpoint_every_steps == 0:
            self.save_checkpoint(f"step_{self.step:07d}.pt")

    def _forward_backward(self, batch: dict, last: bool):
        image = batch["image"].to(self.device, non_blocking=True)
        label = batch["label"].to(self.device, non_blocking=True)
        weight = batch.get("weight")
        weight = weight.to(self.device, non_blocking=True) if weight is not None else None
        # Without sync, DDP would all-reduce gradients after every micro-batch of an accumulation window.
        sync = self.network.no_sync() if (not last and self.ctx.world_size > 1) else contextlib.nullcontext()
        with sync:
            with torch.autocast(self.device.type, enabled=self.use_amp):
                outputs = self.network(image)
                total, parts = self.loss_fn(outputs, label, weight)
            self._check_finite(total, batch)
            self.scaler.scale(total / self.settings.accumulate).backward()
        return outputs, float(total.detach()), {k: float(v) for k, v in parts.items()}

    def _check_finite(self, total: torch.Tensor, batch: dict) -> None:
        """Every rank learns of a non-finite loss anywhere, so none is left waiting in an all-reduce."""
        finite = torch.isfinite(total.detach()).float().reshape(1)
        if self.ctx.world_size > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() == 1.0:
            return
        step, epoch = self.step + 1, self.epoch + 1
        if torch.isfinite(total.detach()):
            raise TrainingError(f"non-finite loss on another process at step {step} (epoch {epoch}); stopping")
        paths = ", ".join(str(p) for p in batch.get("path", [])) or "(no paths in batch)"
        raise TrainingError(f"loss is {float(total.detach())} at step {step} (epoch {epoch}, rank "
                            f"{self.ctx.rank}); the batch's images: {paths}")

    def _optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    # ---- logging -----------------------------------------------------------------------------
    def _log(self, loss: float, parts: dict, images_per_s: float) -> None:
        parts = {key: value for key, value in parts.items() if key != "total"}
        values = torch.tensor([loss, *parts.values()], dtype=torch.float64, device=self.device)
        if self.ctx.world_size > 1:
            dist.all_reduce(values)
            values /= self.ctx.world_size
        if self.writer is None:
            return
        self.writer.add_scalar("loss/total", values[0].item(), self.step)
        for key, value in zip(parts, values[1:].tolist()):
            self.writer.add_scalar(f"loss/{key}", value, self.step)
        for group in self.optimizer.param_groups:
            self.writer.add_scalar(f"lr/{group.get('name', 'group')}", group["lr"], self.step)
        self.writer.add_scalar("speed/images_per_s", images_per_s, self.step)

    def _log_image(self, batch: dict, outputs) -> None:
        if self.writer is None or self.render is None:
            return
        with torch.no_grad():
            picture = self.render(batch, main_logits(outputs).detach().float().cpu())
        self.writer.add_image("samples/image_label_prediction", picture, self.step)

    def save_loss_curve(self) -> None:
        if not self.ctx.is_main or not self.history:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        steps, losses = zip(*self.history)
        figure, axis = plt.subplots(figsize=(6, 3.5))
        axis.plot(steps, losses, linewidth=1)
        axis.set_xlabel("step")
        axis.set_ylabel("training loss")
        axis.set_title(f"{self.out_dir.name}: {len(steps)} steps")
        axis.grid(alpha=0.3)
        figure.tight_layout()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.out_dir / "loss_curve.png", dpi=100)
        plt.close(figure)

    def _print(self, message: str) -> None:
        if self.ctx.is_main:
            tqdm.write(message)

