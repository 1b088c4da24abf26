"""Train the known-answer classifiers on the world's ImageFolder split and cache their weights.

Each model in `classifiers.models` is trained from scratch (AdamW, cosine schedule, flips) and
saved as <output>/<name>.pt (a state_dict) with <name>.json beside it (family, sizes, class names,
config hash, val accuracy, training time). A model whose .json carries the current config hash is
not trained again. The world is generated first if it is not on disk yet.

    .venv/bin/python -m benchmarks.known_answer.train_classifiers --config conf/known_answer.yaml [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.datasets import ImageFolder

from benchmarks.known_answer.generate import DATA_KEYS, config_hash, generate
from benchmarks.known_answer.models import ARCH_KEYS, make_net, record_path, wrap
from pipeline.config import ConfigError, load_config

TRAINING_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing")


def load_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All images of a split in memory as uint8 [N,3,H,W], their ImageFolder class ids, and class names."""
    folder = root / "classification" / split
    if not folder.is_dir():
        raise ConfigError(f"no {split} split at {folder}; run benchmarks.known_answer.generate first")
    dataset = ImageFolder(str(folder))
    images = np.stack([np.asarray(Image.open(path).convert("RGB")) for path, _ in dataset.samples])
    labels = torch.tensor([label for _, label in dataset.samples], dtype=torch.int64)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels, list(dataset.classes)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal and vertical flips (every category is still itself when mirrored)."""
    flip_h = torch.rand(batch.shape[0], generator=generator) < 0.5
    flip_v = torch.rand(batch.shape[0], generator=generator) < 0.5
    batch = torch.where(flip_h[:, None, None, None], batch.flip(3), batch)
    return torch.where(flip_v[:, None, None, None], batch.flip(2), batch)


def train_steps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: dict,
                steps: int, seed: int, device: torch.device) -> list[float]:
    """`steps` optimiser steps over shuffled batches of uint8 `images`; returns the loss of each step."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings["lr"], total_steps=steps,
                                                   pct_start=0.15)
    criterion = nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])
    batch_size = min(int(settings["batch_size"]), len(labels))
    order = torch.empty(0, dtype=torch.int64)
    losses = []
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(len(labels), generator=generator)])
        index, order = order[:batch_size], order[batch_size:]
        batch = augment(images[index], generator).to(device).float() / 255.0
        loss = criterion(model(batch), labels[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(images[i:i + batch_size].to(device).float() / 255.0).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])


def train_model(name: str, model_spec: dict, config: dict, data: dict, device: torch.device) -> dict:
    """Train one model, save weights and record, and return the record."""
    settings = config["classifiers"]
    images, labels, classes = data["train"]
    family = model_spec["family"]
    arch = {key: model_spec[key] for key in ARCH_KEYS if key in model_spec}
    torch.manual_seed(config["seed"])
    net = make_net(family, len(classes), **arch)
    model = wrap(net).to(device)
    steps = int(settings["epochs"]) * math.ceil(len(labels) / int(settings["batch_size"]))
    started = time.perf_counter()
    losses = train_steps(model, images, labels, settings, steps, config["seed"], device)
    seconds = time.perf_counter() - started
    val_images, val_labels, _ = data["val"]
    predicted = predict(model, val_images, device)
    per_class = {cls: float((predicted[val_labels == k] == k).float().mean()) for k, cls in enumerate(classes)}
    steps_per_epoch = steps // int(settings["epochs"])
    record = {
        "name": name, "family": family, "arch": arch, "classes": len(classes), "class_names": classes,
        "input_size": int(images.shape[-1]), "config_hash": model_hash(config, model_spec),
        "val_accuracy": float((predicted == val_labels).float().mean()), "val_accuracy_per_class": per_class,
        "train_seconds": round(seconds, 1), "train_images": len(labels), "val_images": len(val_labels),
        "epoch_losses": [round(float(np.mean(losses[i:i + steps_per_epoch])), 4)
                         for i in range(0, steps, steps_per_epoch)],
        "parameters": sum(p.numel() for p in net.parameters()), "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    output = Path(settings["output"])
    output.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), output / f"{name}.pt")
    record_path(output / f"{name}.pt").write_text(json.dumps(record, indent=2) + "\n")
    return record


def model_hash(config: dict, model_spec: dict) -> str:
    """Hash of everything that changes a trained model: the world, the training settings, the model."""
    settings = {key: config["classifiers"][key] for key in TRAINING_KEYS}
    return config_hash({"data": config_hash(config, DATA_KEYS), "training": settings, "model": model_spec},
                       ("data", "training", "model"))


def cached_record(config: dict, name: str, model_spec: dict) -> dict | None:
    weights = Path(config["classifiers"]["output"]) / f"{name}.pt"
    record_file = record_path(weights)
    if weights.is_file() and record_file.is_file():
        record = json.loads(record_file.read_text())
        if record.get("config_hash") == model_hash(config, model_spec):
            return record
    return None


def train_all(config: dict) -> dict[str, dict]:
    """Train (or reuse) every configured model; returns name -> record."""
    root = generate(config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    records, data = {}, {}
    for name, model_spec in config["classifiers"]["models"].items():
        if "family" not in model_spec:
            raise ConfigError(f"classifiers.models.{name}: needs a family (vgg, resnet, convmixer)")
        record = cached_record(config, name, model_spec)
        if record is None:
            if not data:
                data = {split: load_split(root, split) for split in ("train", "val")}
            record = train_model(name, model_spec, config, data, device)
        records[name] = record
        print(f"{name:14s} {record['family']:10s} val accuracy {record['val_accuracy']:.3f}  "
              f"trained in {record['train_seconds']:.0f} s ({record['parameters']} parameters)")
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="conf/known_answer.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. classifiers.epochs=5")
    args = parser.parse_args(argv)
    train_all(load_config(args.config, args.overrides))


if __name__ == "__main__":
    main()
