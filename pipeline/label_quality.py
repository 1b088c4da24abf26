"""How good are the labels? IoU of the foreground/background split against ground-truth masks.

For each member subset (each single member, each model's members together, the whole ensemble, or
any given) and each threshold t, the subset's consensus (mean of the members' normalised maps, the
fuse rule) is split at t: foreground where c >= t. Intersections and unions are summed over all
images with a ground truth (the standard dataset-level IoU), at the store's map size, ignoring
ground-truth pixels marked 255. mIoU is the mean of the background and foreground IoU.

Ground truth: a folder of PNG masks named after the image file (`<stem>.png`): 0 background,
255 ignore, any other value foreground (so 0/1 masks and VOC class masks both work). With class
masks, each image counts toward its dominant class (0 when it has no foreground), and per-class
IoU is the foreground IoU over that class's images.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.store import (  # noqa: E402
    INDEX_PATH,
    INDEX_STATUS,
    STATUS_OK,
    map_size,
    open_store,
    saliency_name,
    score_name,
    store_explainers,
    store_models,
)
from pipeline.fuse import member_weights, normalise  # noqa: E402

GT_IGNORE = 255


def load_ground_truth(gt_dir: str | Path, paths: list[str], size: int) -> dict[int, np.ndarray]:
    """{image index: [size, size] uint8 mask} for every image with a `<stem>.png` in `gt_dir` (nearest resize)."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise FileNotFoundError(f"ground-truth folder not found: {gt_dir}")
    found = {}
    for i, path in enumerate(paths):
        file = gt_dir / f"{PurePosixPath(path).stem}.png"
        if file.is_file():
            with Image.open(file) as picture:
                mask = picture if picture.mode in ("L", "P", "1") else picture.convert("L")
                found[i] = np.asarray(mask.resize((size, size), Image.NEAREST), dtype=np.uint8)
    if not found:
        raise ValueError(f"no ground-truth mask in {gt_dir} matches an image of the store (<stem>.png)")
    return found


def default_subsets(members: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Each member alone, each model's members together, and the full ensemble."""
    subsets = {f"{m}/{e}": [(m, e)] for m, e in members}
    for model in dict.fromkeys(m for m, _ in members):
        own = [x for x in members if x[0] == model]
        if len(own) > 1:
            subsets[f"{model} (all explainers)"] = own
    if len(members) > 1:
        subsets["ensemble"] = list(members)
    return subsets


def _dominant_class(gt: np.ndarray) -> int:
    values, counts = np.unique(gt[(gt != 0) & (gt != GT_IGNORE)], return_counts=True)
    return int(values[counts.argmax()]) if len(values) else 0


def evaluate(store_path: str | Path, gt_dir: str | Path, subsets: dict[str, list[tuple[str, str]]] | None = None,
             thresholds=None, weight_by_probability: bool = False, plot_path: str | Path | None = None) -> list[dict]:
    """Rows of {subset, threshold, miou, iou_fg, iou_bg, per_class, images}; optionally a plot of mIoU vs t."""
    group = open_store(store_path, mode="r")
    members = [(m, e) for m in store_models(group) for e in store_explainers(group)]
    subsets = subsets or default_subsets(members)
    thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2) if thresholds is None else np.asarray(thresholds, float)
    needed = list(dict.fromkeys(x for chosen in subsets.values() for x in chosen))
    for model, explainer in needed:
        if saliency_name(model, explainer) not in group:
            raise KeyError(f"{saliency_name(model, explainer)} is not in {store_path}")
    status = np.asarray(group[INDEX_STATUS][:])
    truth = load_ground_truth(gt_dir, [str(p) for p in group[INDEX_PATH][:]], map_size(group))
    truth = {i: gt for i, gt in truth.items() if status[i] == STATUS_OK}
    # counts[subset][class] = [intersection_fg, union_fg, intersection_bg, union_bg] per threshold
    counts: dict[str, dict[int, np.ndarray]] = {name: {} for name in subsets}
    for i, gt in truth.items():
        normalised = {x: normalise(group[saliency_name(*x)][i][None])[0] for x in needed}
        valid = gt != GT_IGNORE
        is_fg = (gt != 0) & valid
        is_bg = (gt == 0) & valid
        cls = _dominant_class(gt)
        for name, chosen in subsets.items():
            probabilities = (np.array([[float(group[score_name(m)][i])] for m, _ in chosen])
                             if weight_by_probability else None)
            w = member_weights(probabilities, len(chosen), 1)[:, 0]
            consensus = sum(wi * normalised[x] for wi, x in zip(w, chosen))[valid]
            pred_fg = consensus[None, :] >= thresholds[:, None]
            fg, bg = is_fg[valid][None, :], is_bg[valid][None, :]
            tally = np.stack([(pred_fg & fg).sum(1), (pred_fg | fg).sum(1),
                              (~pred_fg & bg).sum(1), (~pred_fg | bg).sum(1)], axis=1).astype(np.int64)
            counts[name][cls] = counts[name].get(cls, 0) + tally
    rows = []
    for name in subsets:
        total = sum(counts[name].values())
        iou_fg = total[:, 0] / np.maximum(total[:, 1], 1)
        iou_bg = total[:, 2] / np.maximum(total[:, 3], 1)
        for t_index, t in enumerate(thresholds):
            per_class = {cls: float(c[t_index, 0] / max(c[t_index, 1], 1))
                         for cls, c in sorted(counts[name].items())}
            rows.append({"subset": name, "threshold": float(t), "miou": float((iou_fg[t_index] + iou_bg[t_index]) / 2),
                         "iou_fg": float(iou_fg[t_index]), "iou_bg": float(iou_bg[t_index]),
                         "per_class": per_class, "images": len(truth)})
    if plot_path is not None:
        plot(rows, plot_path)
    return rows


def best_rows(rows: list[dict]) -> list[dict]:
    """The best threshold of each subset."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["subset"] not in best or row["miou"] > best[row["subset"]]["miou"]:
            best[row["subset"]] = row
    return list(best.values())


def format_table(rows: list[dict]) -> str:
    """A markdown table of each subset's best threshold."""
    lines = ["| subset | best threshold | mIoU | IoU fg | IoU bg | images |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['subset']} | {r['threshold']:.2f} | {r['miou']:.3f} | {r['iou_fg']:.3f} | {r['iou_bg']:.3f} "
              f"| {r['images']} |" for r in best_rows(rows)]
    return "\n".join(lines)


def plot(rows: list[dict], path: str | Path) -> Path:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["subset"] for r in rows):
        mine = [r for r in rows if r["subset"] == name]
        axis.plot([r["threshold"] for r in mine], [r["miou"] for r in mine], marker=".", label=name,
                  linewidth=2.5 if name == "ensemble" else 1.2)
    axis.set_xlabel("foreground threshold on the consensus")
    axis.set_ylabel("mIoU (foreground / background)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
