"""Label part of the known-answer report: image subsets, the generate-labels config, member subsets,
threshold tuning on one subset and scoring on another.

Tuning and judging use disjoint images (the first images of each class of the classification train
split, and of its val split), so the reported label quality is not fitted to the images it is measured
on. IoU itself comes from pipeline.label_quality (the project's one definition).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.store import BACKGROUND, FOREGROUND, INDEX_PATH, MASK, map_size, open_store
from pipeline import label_quality

ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class ImageSubset:
    """The first `per_class` images of each class of one classification split, listed for the pipeline."""
    name: str
    split: str
    data_root: Path     # classification/<split>: the ImageFolder root the file list is relative to
    file_list: Path     # lines `<class>/<file> <class id>` (pipeline data.source=filelist)
    gt_dir: Path        # <stem>.png: 0 background, class id + 1 on the object (label_quality's layout)
    count: int


def write_subset(name: str, world_root: Path, split: str, per_class: int, out_dir: Path) -> ImageSubset:
    """List the images and write their ground truth as class-valued masks (so IoU is also given per class)."""
    data_root = world_root / "classification" / split
    mask_root = world_root / "classification_masks" / split
    if not data_root.is_dir():
        raise FileNotFoundError(f"no classification split at {data_root}; generate the world first")
    classes = sorted(entry.name for entry in data_root.iterdir() if entry.is_dir())
    gt_dir = out_dir / f"gt_{name}"
    gt_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for class_id, cls in enumerate(classes):
        files = sorted((data_root / cls).glob("*.png"))
        if len(files) < per_class:
            raise ValueError(f"{data_root / cls} has {len(files)} images, the {name} subset asks for {per_class}")
        for file in files[:per_class]:
            mask = np.asarray(Image.open(mask_root / cls / file.name))
            Image.fromarray(np.where(mask > 0, class_id + 1, 0).astype(np.uint8)).save(gt_dir / f"{file.stem}.png")
            lines.append(f"{cls}/{file.name} {class_id}")
    file_list = out_dir / f"{name}.txt"
    file_list.write_text("\n".join(lines) + "\n")
    return ImageSubset(name, split, data_root, file_list, gt_dir, len(lines))


def pipeline_config(settings: dict, subset: ImageSubset, store: Path, models: list[dict], num_classes: int) -> dict:
    """The generate-labels config of one subset: the report's pipeline section plus where things are."""
    config = {section: dict(values) for section, values in settings.items()}
    config["run"] = {"name": subset.name, "store": str(store)}
    config["data"].update(root=str(subset.data_root), file_list=str(subset.file_list))
    config["explain"].update(models=models, num_classes=num_classes)
    return config


def product_name(models: tuple[str, ...], explainers: tuple[str, ...], all_models: list[str],
                 all_explainers: list[str]) -> str:
    """Readable names: a member, a model's explainers, an explainer across models, the ensemble, or a mix."""
    every_model, every_explainer = len(models) == len(all_models), len(explainers) == len(all_explainers)
    if every_model and every_explainer:
        return ENSEMBLE
    if len(models) == 1 and len(explainers) == 1:
        return f"{models[0]}/{explainers[0]}"
    if len(models) == 1 and every_explainer:
        return f"{models[0]} (all explainers)"
    if len(explainers) == 1 and every_model:
        return f"{explainers[0]} (all models)"
    return f"{'+'.join(models)} × {'+'.join(explainers)}"


def product_subsets(models: list[str], explainers: list[str]) -> dict[str, dict]:
    """Every models × explainers product (what fuse.models / fuse.explainers can express):
    {name: {members, models, explainers, kind}} with kind member / model / explainer / ensemble / mix."""
    subsets = {}
    for m_count in range(1, len(models) + 1):
        for chosen_models in itertools.combinations(models, m_count):
            for e_count in range(1, len(explainers) + 1):
                for chosen_explainers in itertools.combinations(explainers, e_count):
                    name = product_name(chosen_models, chosen_explainers, models, explainers)
                    kind = {1: "member"}.get(m_count * e_count) or (
                        ENSEMBLE if name == ENSEMBLE else "model" if name.endswith("(all explainers)")
                        else "explainer" if name.endswith("(all models)") else "mix")
                    subsets[name] = {"members": [(m, e) for m in chosen_models for e in chosen_explainers],
                                     "models": list(chosen_models), "explainers": list(chosen_explainers),
                                     "kind": kind}
    return subsets


def thresholds(settings: dict) -> np.ndarray:
    start, stop, step = (float(settings[key]) for key in ("start", "stop", "step"))
    return np.round(np.arange(start, stop + step / 2, step), 4)


def sweep(store: Path, subset: ImageSubset, subsets: dict[str, dict], grid: np.ndarray) -> list[dict]:
    """label_quality rows for every subset, unweighted, and probability-weighted for multi-model subsets
    (for one model all its members share the probability, so weighting changes nothing)."""
    plain = {name: s["members"] for name, s in subsets.items()}
    rows = label_quality.evaluate(store, subset.gt_dir, plain, grid)
    for row in rows:
        row["weighted"] = False
    multi = {f"{name} [p-weighted]": s["members"] for name, s in subsets.items() if len(s["models"]) > 1}
    if multi:
        weighted = label_quality.evaluate(store, subset.gt_dir, multi, grid, weight_by_probability=True)
        for row in weighted:
            row["weighted"] = True
        rows += weighted
    return rows


def base_name(subset_name: str) -> str:
    return subset_name.removesuffix(" [p-weighted]")


def tune(rows: list[dict], subsets: dict[str, dict], min_members: int) -> tuple[dict[str, float], dict]:
    """Each subset's best threshold on the tuning rows, and the best ensemble (>= min_members members,
    either weighting) with its members, weighting and threshold: the fusion defaults this benchmark picks."""
    best = {row["subset"]: row for row in label_quality.best_rows(rows)}
    chosen_thresholds = {name: row["threshold"] for name, row in best.items()}
    candidates = [row for name, row in best.items() if len(subsets[base_name(name)]["members"]) >= min_members]
    if not candidates:
        raise ValueError(f"no ensemble with >= {min_members} members to tune (labels.min_members)")
    winner = max(candidates, key=lambda row: (round(row["miou"], 6), len(subsets[base_name(row["subset"])]["members"])))
    spec = subsets[base_name(winner["subset"])]
    fusion = {"subset": winner["subset"], "models": spec["models"], "explainers": spec["explainers"],
              "weight_by_probability": bool(winner["weighted"]), "fg_threshold": winner["threshold"],
              "tuning_miou": winner["miou"]}
    return chosen_thresholds, fusion


def at_thresholds(rows: list[dict], chosen: dict[str, float]) -> dict[str, dict]:
    """{subset: the row at the threshold chosen for it on the tuning images}."""
    picked = {}
    for row in rows:
        if abs(row["threshold"] - chosen[row["subset"]]) < 1e-9:
            picked[row["subset"]] = row
    return picked


def fused_label_quality(store: Path, subset: ImageSubset) -> dict:
    """How good the written pssl/mask is: the share of pixels it decides, and on those the IoU of
    foreground and background against the ground truth (ignored pixels cost coverage, not accuracy)."""
    group = open_store(store, mode="r")
    truth = label_quality.load_ground_truth(subset.gt_dir, [str(p) for p in group[INDEX_PATH][:]],
                                            map_size(group))
    counts = dict.fromkeys(("decided", "valid", "fg_inter", "fg_union", "bg_inter", "bg_union"), 0)
    for i, gt in truth.items():
        mask = np.asarray(group[MASK][i])
        valid = gt != label_quality.GT_IGNORE
        decided = valid & ((mask == FOREGROUND) | (mask == BACKGROUND))
        pred_fg, pred_bg, is_fg = mask == FOREGROUND, mask == BACKGROUND, gt != 0
        counts["decided"] += int(decided.sum())
        counts["valid"] += int(valid.sum())
        counts["fg_inter"] += int((pred_fg & is_fg & decided).sum())
        counts["fg_union"] += int(((pred_fg | is_fg) & decided).sum())
        counts["bg_inter"] += int((pred_bg & ~is_fg & decided).sum())
        counts["bg_union"] += int(((pred_bg | ~is_fg) & decided).sum())
    iou_fg = counts["fg_inter"] / max(counts["fg_union"], 1)
    iou_bg = counts["bg_inter"] / max(counts["bg_union"], 1)
    return {"decided_fraction": counts["decided"] / max(counts["valid"], 1), "iou_fg": float(iou_fg),
            "iou_bg": float(iou_bg), "miou": float((iou_fg + iou_bg) / 2), "images": len(truth)}
