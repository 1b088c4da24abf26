"""Downstream part of the known-answer report: PSSL pre-training on the fused labels, then fine-tuning on
the small segmentation split from that checkpoint and from scratch, over several seeds.

Both arms run the project's own commands (`python -m training pretrain / finetune-voc`) with the same
overrides and seeds; only the initialisation differs. The fine-tuning networks keep the 21 VOC
outputs of training/finetune_voc.py, so the world's score is the mean IoU over its own K + 1 classes
(background and the K categories) taken from the per-class IoU the run writes.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.known_answer.commands import CommandLog, as_overrides, python_command
from training.trainer import CHECKPOINT_DIR, LAST

ARMS = ("pssl", "baseline")


def thread_env(settings: dict) -> dict:
    """OMP_NUM_THREADS for a training command, if the config sets `threads` (see the config's note)."""
    return {"OMP_NUM_THREADS": settings["threads"]} if settings.get("threads") else {}


def pretrain(log: CommandLog, settings: dict, store: Path, num_classes: int, out_dir: Path) -> Path:
    """Pre-train on the store's PSSL labels (`num_classes` = categories + background, the last index,
    and the ignore index just past them); returns the last checkpoint."""
    overrides = as_overrides({**settings["set"], "num_classes": num_classes, "ignore_index": num_classes,
                              "data": {**settings["set"].get("data", {}), "store": str(store)},
                              "run": {"out_dir": str(out_dir), "resume": None}})
    log.run("pretrain", python_command("training", "pretrain", "--config", settings["config"], *overrides),
            thread_env(settings))
    return out_dir / CHECKPOINT_DIR / LAST


def finetune(log: CommandLog, settings: dict, arm: str, seed: int, voc_root: Path, checkpoint: Path | None,
             out_dir: Path) -> Path:
    """One fine-tune + evaluation; returns its results.json."""
    config = settings["pssl_config"] if arm == "pssl" else settings["baseline_config"]
    run_dir = out_dir / f"{arm}_seed{seed}"
    nested = {**settings["set"], "run": {"out_dir": str(run_dir), "resume": None},
              "data": {**settings["set"].get("data", {}), "root": str(voc_root)},
              "train": {**settings["set"].get("train", {}), "seed": seed}}
    if arm == "pssl":
        nested["model"] = {**settings["set"].get("model", {}), "pretrained": str(checkpoint)}
    log.run(f"finetune_{arm}_seed{seed}",
            python_command("training", "finetune-voc", "--config", config, *as_overrides(nested)), thread_env(settings))
    return run_dir / "results.json"


def world_miou(results_json: Path, num_classes: int, mode: str) -> float:
    """Mean IoU (%) over the first `num_classes` VOC indices (background + the world's categories).
    A class that never occurs in the val split and is never predicted has no IoU and is left out."""
    per_class = list(json.loads(results_json.read_text())["modes"][mode]["per_class_iou"].values())[:num_classes]
    present = [value for value in per_class if value is not None]
    return 100 * sum(present) / len(present)


def summarise(values: dict[str, list[float]]) -> dict:
    """Mean, sample std and per-seed values per arm; the PSSL gain and whether it beats the seed spread."""
    summary = {arm: {"values": v, "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}
               for arm, v in values.items()}
    gain = summary["pssl"]["mean"] - summary["baseline"]["mean"]
    spread = max(summary["pssl"]["std"], summary["baseline"]["std"])
    summary["gain"], summary["spread"] = gain, spread
    summary["target_met"] = bool(gain > spread)
    return summary
