"""How good are the labels? IoU of the foreground/background split against ground-truth masks.

For each member subset (each single member, each model's members together, the whole ensemble, or
any given) and each threshold t, the subset's consensus (`pipeline.fuse.rules.fuse_image` on the
subset's maps and stored q99) is split at t: foreground where c >= t. Intersections and unions are summed over all
images with a ground truth (the standard dataset-level IoU), at the store's map size, ignoring
ground-truth pixels marked 255. mIoU is the mean of the background and foreground IoU.

Ground truth: a folder of PNG masks named after the image file (`<stem>.png`), read in one explicit
encoding (ENCODINGS): `voc` (palette or grey indices: 0 background, 255 ignore, k = class k),
`binary01` (0 / 1), `binary255` (0 / 255) and `imagenet-s` (RGB, class id = R + 256 G as the
ImageNet-S devkit writes it, 0 background, 1000 ignore). A mask without one foreground pixel is an
error that names the likely encoding mistake: read as `voc`, a folder of 0/255 masks is all ignore,
and every IoU would quietly be 0. With class masks, each image counts toward its dominant class
(0 when it has no foreground), and per-class IoU is the foreground IoU over that class's images.

The fused labels as written (`pssl/mask`) are scored by `score_labels`: per image and over the
dataset, foreground IoU with ignore read as background (as PaddleSeg's reader reads the released
labels) and with ignore excluded, plus the ignore fraction.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.errors import PsslError  # noqa: E402
from core.images import image_at_map_size  # noqa: E402
from core.store import (  # noqa: E402
    BACKGROUND,
    FOREGROUND,
    IGNORE,
    INDEX_PATH,
    INDEX_STATUS,
    MASK,
    STATUS_OK,
    labelled_images,
    map_size,
    open_store,
    saliency_name,
    score_name,
    store_explainers,
    store_models,
)
from core.schema import FuseRule  # noqa: E402
from pipeline.fuse.stage import fuse_rows, member_probabilities, pipeline_config, plan_for, stored_q99  # noqa: E402
from pipeline.fuse.rules import fuse_image  # noqa: E402
from pipeline.maps.stored import StoredMaps  # noqa: E402

GT_IGNORE = -1  # decoded ground truth: int32, 0 background, > 0 the class (1 for binary masks), -1 ignore
ENCODINGS = ("voc", "binary01", "binary255", "imagenet-s")
IMAGENET_S_IGNORE = 1000
HINTS = {  # (encoding read, what the file holds) -> the likely mistake
    ("voc", "0/255"): "it looks like a 0/255 binary mask: use --gt-encoding binary255",
    ("binary01", "0/255"): "it looks like a 0/255 binary mask: use --gt-encoding binary255",
    ("binary255", "0/1"): "it looks like a 0/1 binary mask: use --gt-encoding binary01",
    ("voc", "rgb"): "it is an RGB image: VOC masks are palette PNGs (ImageNet-S masks: --gt-encoding imagenet-s)",
    ("imagenet-s", "not rgb"): "ImageNet-S masks are RGB PNGs with the class id in R + 256 G",
}


class GroundTruthError(PsslError, ValueError):
    """A ground-truth mask that cannot be read in the chosen encoding (one line, naming the file)."""


def _what_it_holds(raw: np.ndarray) -> str:
    values = set(np.unique(raw).tolist()) if raw.ndim == 2 else set()
    if raw.ndim == 3:
        return "rgb"
    return "empty" if len(values) <= 1 else "0/255" if values == {0, 255} else "0/1" if values == {0, 1} else "other"


def decode_ground_truth(file: str | Path, encoding: str) -> np.ndarray:
    """int32 [H, W] ground truth (0 background, > 0 class, GT_IGNORE) from one mask file in `encoding`."""
    if encoding not in ENCODINGS:
        raise GroundTruthError(f"unknown ground-truth encoding {encoding!r}; choose one of {list(ENCODINGS)}")
    with Image.open(file) as picture:
        if encoding == "imagenet-s":
            if picture.mode not in ("RGB", "RGBA"):
                raise GroundTruthError(f"{file}: mode {picture.mode}; {HINTS[('imagenet-s', 'not rgb')]}")
            raw = np.asarray(picture.convert("RGB"), np.int32)
        else:
            raw = np.asarray(picture if picture.mode in ("L", "P", "1", "I", "I;16") else picture.convert("RGB"),
                             np.int32)
    if raw.ndim == 3 and encoding != "imagenet-s":
        raise GroundTruthError(f"{file}: not a one-channel mask; {HINTS.get((encoding, 'rgb'), 'read it as imagenet-s?')}")
    if encoding == "imagenet-s":
        ids = raw[..., 0] + 256 * raw[..., 1]
        decoded = np.where(ids == IMAGENET_S_IGNORE, GT_IGNORE, ids)
    elif encoding == "voc":
        decoded = np.where(raw == 255, GT_IGNORE, raw)
    else:
        high = 1 if encoding == "binary01" else 255
        stray = sorted(set(np.unique(raw).tolist()) - {0, high})
        if stray:
            raise GroundTruthError(f"{file}: values {stray[:5]} in a {encoding} mask (only 0 and {high} allowed)"
                                   + (f"; {HINTS[(encoding, _what_it_holds(raw))]}"
                                      if (encoding, _what_it_holds(raw)) in HINTS else ""))
        decoded = (raw == high).astype(np.int32)
    if not (decoded > 0).any():
        hint = HINTS.get((encoding, _what_it_holds(raw)), "is the object missing, or is this another encoding?")
        raise GroundTruthError(f"{file}: no foreground pixel when read as {encoding}; {hint}")
    return decoded.astype(np.int32)


def resize_nearest(mask: np.ndarray, size: int) -> np.ndarray:
    """[H, W] -> [size, size] by nearest neighbour (pixel centres), for any integer dtype."""
    rows = np.minimum(((np.arange(size) + 0.5) * mask.shape[0] / size).astype(int), mask.shape[0] - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * mask.shape[1] / size).astype(int), mask.shape[1] - 1)
    return mask[rows[:, None], cols[None, :]]


def load_ground_truth(gt_dir: str | Path, paths: list[str], size: int, encoding: str = "voc") -> dict[int, np.ndarray]:
    """{image index: [size, size] int32 ground truth} for every image with a `<stem>.png` in `gt_dir`."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise FileNotFoundError(f"ground-truth folder not found: {gt_dir}")
    found = {}
    for i, path in enumerate(paths):
        file = gt_dir / f"{PurePosixPath(path).stem}.png"
        if file.is_file():
            found[i] = resize_nearest(decode_ground_truth(file, encoding), size)
    if not found:
        raise GroundTruthError(f"no ground-truth mask in {gt_dir} matches an image of the store (<stem>.png)")
    return found


def score_labels(mask: np.ndarray, gt: np.ndarray) -> dict[str, int]:
    """Pixel counts of one fused label (FOREGROUND / BACKGROUND / IGNORE) against decoded ground truth,
    for foreground IoU with ignore read as background (`*_as_bg`) and with ignore excluded (`*_excl`)."""
    valid = gt != GT_IGNORE
    truth = (gt > 0) & valid
    pred = (mask == FOREGROUND) & valid
    decided = valid & ((mask == FOREGROUND) | (mask == BACKGROUND))
    background = (gt == 0) & valid
    return {"inter_as_bg": int((pred & truth).sum()), "union_as_bg": int((pred | truth).sum()),
            "bg_inter_as_bg": int((~pred & background).sum()), "bg_union_as_bg": int(((~pred & valid) | background).sum()),
            "inter_excl": int((pred & truth & decided).sum()), "union_excl": int(((pred | truth) & decided).sum()),
            "ignored": int((valid & (mask == IGNORE)).sum()), "valid": int(valid.sum())}


def summarise_scores(counts: dict[str, dict[str, int]]) -> dict:
    """{per_image: {name: ious}, dataset: ious, mean: ious}; ious = iou_as_bg, iou_excl, ignore_fraction.
    `mean` averages the per-image values; `dataset` divides the summed counts (the standard IoU)."""
    def ious(c):
        fg, bg = c["inter_as_bg"] / max(c["union_as_bg"], 1), c["bg_inter_as_bg"] / max(c["bg_union_as_bg"], 1)
        return {"iou_as_bg": fg, "miou_as_bg": (fg + bg) / 2,
                "iou_excl": c["inter_excl"] / max(c["union_excl"], 1),
                "ignore_fraction": c["ignored"] / max(c["valid"], 1)}
    per_image = {name: ious(c) for name, c in counts.items()}
    total = {key: sum(c[key] for c in counts.values()) for key in next(iter(counts.values()))}
    mean = {key: float(np.mean([v[key] for v in per_image.values()])) for key in next(iter(per_image.values()))}
    return {"per_image": per_image, "dataset": ious(total), "mean": mean}


def fused_label_scores(store_path: str | Path, gt_dir: str | Path, encoding: str = "voc") -> dict:
    """summarise_scores of the store's written labels (pssl/mask) on every labelled image with a ground truth."""
    group = open_store(store_path, mode="r")
    labelled = labelled_images(group)
    if not labelled.any():
        raise ValueError(f"{store_path} has no fused labels yet (run fuse first)")
    paths = [str(p) for p in group[INDEX_PATH][:]]
    truth = load_ground_truth(gt_dir, paths, map_size(group), encoding)
    counts = {PurePosixPath(paths[i]).name: score_labels(np.asarray(group[MASK][i]), gt)
              for i, gt in truth.items() if labelled[i]}
    if not counts:
        raise ValueError(f"no image with a ground truth in {gt_dir} has a fused label in {store_path}")
    return summarise_scores(counts)


RELIABILITY_BINS = 10


def variant_scores(store_path: str | Path, gt_dir: str | Path, config: dict, encoding: str = "voc") -> dict:
    """summarise_scores of the labels the fuse stage would write with `config`'s fuse: section, made in
    memory (nothing is written) on every image with a ground truth: a fuse variant judged without a re-run.
    Also `reliability`: per weight bin (RELIABILITY_BINS over 0..1), decided pixels and correct ones."""
    group = open_store(store_path, mode="r")
    plan = plan_for(pipeline_config(config).fuse, group)
    paths = [str(p) for p in group[INDEX_PATH][:]]
    status = np.asarray(group[INDEX_STATUS][:])
    truth = load_ground_truth(gt_dir, paths, map_size(group), encoding)
    counts = {}
    reliability = np.zeros((2, RELIABILITY_BINS), np.int64)
    for i, gt in truth.items():
        if status[i] != STATUS_OK:
            continue
        fused = fuse_rows(group, plan, slice(i, i + 1))[0]
        mask, weight = fused.mask, fused.weight
        counts[PurePosixPath(paths[i]).name] = score_labels(mask, gt)
        decided = (mask != IGNORE) & (gt != GT_IGNORE)
        correct = (mask == FOREGROUND) == (gt > 0)
        bins = np.minimum(weight[decided].astype(int) * RELIABILITY_BINS // 256, RELIABILITY_BINS - 1)
        reliability[0] += np.bincount(bins, minlength=RELIABILITY_BINS)
        reliability[1] += np.bincount(bins, weights=correct[decided], minlength=RELIABILITY_BINS).astype(np.int64)
    return {**summarise_scores(counts), "reliability": {"pixels": reliability[0].tolist(),
                                                         "correct": reliability[1].tolist()}}


def plot_reliability(curves: dict[str, dict], path: str | Path) -> Path:
    """Fraction of decided pixels whose label is right, against their confidence weight, one line per variant;
    bars: the share of decided pixels in each weight bin (of the first variant)."""
    figure, axis = plt.subplots(figsize=(6, 4.5))
    centres = (np.arange(RELIABILITY_BINS) + 0.5) / RELIABILITY_BINS
    for n, (name, curve) in enumerate(curves.items()):
        pixels, correct = np.array(curve["pixels"], float), np.array(curve["correct"], float)
        shown = pixels > 0
        axis.plot(centres[shown], (correct / np.maximum(pixels, 1))[shown], marker="o", label=name)
        if n == 0:
            axis.bar(centres, pixels / pixels.sum(), width=0.9 / RELIABILITY_BINS, alpha=0.2, color="grey",
                     label=f"share of pixels ({name})")
    axis.plot([0, 1], [0, 1], ":", color="black", linewidth=0.8, label="weight = accuracy")
    axis.set_xlabel("confidence weight (pssl/weight / 255)")
    axis.set_ylabel("fraction of pixels labelled correctly")
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _save(figure, path)


def _save(figure, path: str | Path) -> Path:
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def format_scores(summary: dict) -> str:
    """A markdown table: one row per image, then the per-image mean and the dataset-level IoU."""
    lines = ["| image | fg IoU (ignore = background) | fg IoU (ignore excluded) | ignore fraction |",
             "|---|---|---|---|"]
    rows = list(summary["per_image"].items()) + [("**mean over images**", summary["mean"]),
                                                 ("**dataset (summed pixels)**", summary["dataset"])]
    lines += [f"| {name} | {v['iou_as_bg']:.3f} | {v['iou_excl']:.3f} | {v['ignore_fraction']:.3f} |"
              for name, v in rows]
    return "\n".join(lines)


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
    values, counts = np.unique(gt[gt > 0], return_counts=True)
    return int(values[counts.argmax()]) if len(values) else 0


def evaluate(store_path: str | Path, gt_dir: str | Path, subsets: dict[str, list[tuple[str, str]]] | None = None,
             thresholds=None, weight_by_probability: bool = False, plot_path: str | Path | None = None,
             encoding: str = "voc") -> list[dict]:
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
    truth = load_ground_truth(gt_dir, [str(p) for p in group[INDEX_PATH][:]], map_size(group), encoding)
    truth = {i: gt for i, gt in truth.items() if status[i] == STATUS_OK}
    # counts[subset][class] = [intersection_fg, union_fg, intersection_bg, union_bg] per threshold
    counts: dict[str, dict[int, np.ndarray]] = {name: {} for name in subsets}
    # thresholds do not change the consensus, the only output read here
    rule = FuseRule(fg_threshold=1.0, bg_threshold=0.0, weight_by_probability=weight_by_probability, refine="none",
                    combine="none")
    for i, gt in truth.items():
        rows = slice(i, i + 1)
        maps = np.stack([StoredMaps(group, *x)[i] for x in needed])
        q99 = stored_q99(group, needed, rows)[:, 0]
        probabilities = member_probabilities(group, needed, rows)[:, 0] if weight_by_probability else None
        valid = gt != GT_IGNORE
        is_fg = (gt > 0) & valid
        is_bg = (gt == 0) & valid
        cls = _dominant_class(gt)
        for name, chosen in subsets.items():
            at = [needed.index(x) for x in chosen]
            consensus = fuse_image(maps[at], q99[at], [e for _, e in chosen], rule,
                                   None if probabilities is None else probabilities[at]).consensus[valid]
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
    return _save(figure, path)
