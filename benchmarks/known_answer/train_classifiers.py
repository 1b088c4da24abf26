"""Train the known-answer classifiers on the world's ImageFolder split and cache their weights.

Each model in `classifiers.models` is trained from scratch (AdamW, cosine schedule, flips) and
saved as <output>/<name>.pt (a state_dict) with <name>.json beside it (family, sizes, class names,
config hash, val accuracy, training time). A model whose .json carries the current config hash is
not trained again. The world is generated first if it is not on disk yet. summary.json records
each model's and the ensemble's val accuracy, with the models loaded through pipeline.explain.classifiers.

    .venv/bin/python -m benchmarks.known_answer.train_classifiers --config conf/known_answer.yaml [key=value ...]
"""
from __future__ import annotations

import sys
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.datasets import ImageFolder

from benchmarks.known_answer.generate import DATA_KEYS, config_hash, generate, world_command
from benchmarks.known_answer.models import ARCH_KEYS, KNOWN_ANSWER_ARCH, make_net, record_path, wrap
from core.config import ConfigError
from pipeline.explain.classifiers import load_classifier

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
    """A random one of the 8 flips/right-angle rotations of each (square) image: every category is
    still itself mirrored or turned, so this multiplies the data without changing a label."""
    def pick(transformed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        chosen = torch.rand(original.shape[0], generator=generator) < 0.5
        return torch.where(chosen[:, None, None, None], transformed, original)

    batch = pick(batch.flip(3), batch)
    batch = pick(batch.flip(2), batch)
    return pick(batch.transpose(2, 3), batch)


def train_steps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: dict,
                steps: int, seed: int, device: torch.device, report_every: int = 0) -> list[float]:
    """`steps` optimiser steps over shuffled batches of uint8 `images`; returns the loss of each step
    (and prints the mean loss every `report_every` steps, so a long run shows it is moving)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings["lr"], total_steps=steps,
                                                   pct_start=0.15)
    criterion = nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])
    batch_size = min(int(settings["batch_size"]), len(labels))
    order = torch.empty(0, dtype=torch.int64)
    losses = []
    started = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
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
        if report_every and step % report_every == 0:
            print(f"  step {step}/{steps}  loss {np.mean(losses[-report_every:]):.3f}  "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
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
    steps_per_epoch = math.ceil(len(labels) / int(settings["batch_size"]))
    steps = int(settings["epochs"]) * steps_per_epoch
    print(f"{name}: training {family} for {steps} steps on {device}", flush=True)
    started = time.perf_counter()
    losses = train_steps(model, images, labels, settings, steps, config["seed"], device, steps_per_epoch)
    seconds = time.perf_counter() - started
    val_images, val_labels, _ = data["val"]
    predicted = predict(model, val_images, device)
    per_class = {cls: float((predicted[val_labels == k] == k).float().mean()) for k, cls in enumerate(classes)}
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
    write_summary(config, records, root, device)
    return records


@torch.no_grad()
def write_summary(config: dict, records: dict[str, dict], root: Path, device: torch.device) -> dict:
    """Accuracy of each model and of their ensemble (mean softmax) on val, loaded the way the
    explain stage loads them; saved as summary.json beside the weights."""
    output = Path(config["classifiers"]["output"])
    images, labels, _ = load_split(root, "val")
    probabilities = {}
    for name in records:
        net = load_classifier({"arch": KNOWN_ANSWER_ARCH, "name": name, "weights": str(output / f"{name}.pt")},
                              device).net
        probabilities[name] = torch.cat([net(images[i:i + 256].to(device).float() / 255.0).softmax(1).cpu()
                                         for i in range(0, len(images), 256)])
    ensemble = torch.stack(list(probabilities.values())).mean(0).argmax(1)
    summary = {
        "val_images": len(labels),
        "models": {name: {"val_accuracy": float((p.argmax(1) == labels).float().mean()),
                          "train_seconds": records[name]["train_seconds"]} for name, p in probabilities.items()},
        "ensemble_val_accuracy": float((ensemble == labels).float().mean()),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"ensemble of {len(records)} (mean softmax): val accuracy {summary['ensemble_val_accuracy']:.3f}")
    return summary


def main(argv: list[str] | None = None) -> int:
    return world_command(argv, __doc__.split("\n\n")[0], train_all, "classifiers.epochs=5")


if __name__ == "__main__":
    sys.exit(main())
