"""What a run's store holds, answered for a person (text) or a script (`--json`): read-only.

The report leads with the short answers (how many images, how far each stage got, what the labels
look like, which images the classifiers barely see, which classes are worst) and keeps the array
table for `--arrays`. Columns are sized to their contents, so long model or explainer names do not
break them. The label statistics are a dask reduction over whole shards (pipeline/inspect/image_stats.py),
so they scale to the full run; a damaged store is reported section by section, never raised.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr

from core.imagenet_classes import class_title
from core.store import (CLASS_SOURCES, CONSENSUS, INDEX_CLASS_SOURCE, INDEX_ERROR, INDEX_PATH,
                        INDEX_STATUS, INDEX_TARGET, MASK, STATUS_BAD, STATUS_OK, STATUS_PENDING, WEIGHT,
                        StoreError, class_names, data_root, fuse_settings, fused_members, is_progress_flag,
                        labelled_images, map_size, n_images, open_store, pruned_shards, saliency_name, shard_count,
                        shard_size, store_explainers, store_models)
from core.store_check import list_arrays, storage_files
from core.target_probability import LOW_TARGET_PROBABILITY, is_low, low_probability_images, target_probability
from pipeline.inspect.image_rows import index_rows
from pipeline.inspect.image_stats import SHARES, label_shares, label_statistics
from pipeline.inspect.overlays import contact_sheet, overlay_sheet

MAX_LISTED = 20  # bad inputs and low-probability images listed by name
CLASSES_SHOWN = 20  # classes in the text report (all of them in --json)
LOWEST_PER_CLASS = 3
FUSE_LINE_WIDTH = 100
CONTACT_IMAGES = 48


def table(rows: list[list], header: list[str], right: set[int] = frozenset()) -> list[str]:
    """Lines of a table whose columns are as wide as their widest cell; columns in `right` are right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in cells]


def stored_bytes(root: Path, name: str) -> tuple[int, int]:
    """(bytes of data files on disk, number of data files) for one array, metadata excluded."""
    files = [p for p in (root / name / "c").rglob("*") if p.is_file()] if (root / name / "c").is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def array_table(root: Path, arrays: dict[str, zarr.Array]) -> list[str]:
    """One line per array: shape, dtype, chunk and shard shape, bytes on disk, compression ratio."""
    rows = []
    for name, array in arrays.items():
        on_disk, n_files = stored_bytes(root, name)
        unit = array.shards or array.chunks
        fixed_width = array.dtype.kind in "biufc"
        ratio = "-"
        if fixed_width and on_disk:
            raw = min(array.nbytes, n_files * int(np.prod(unit)) * array.dtype.itemsize)
            ratio = f"{raw / on_disk:.1f}"
        rows.append([name, "x".join(map(str, array.shape)), str(array.dtype) if fixed_width else "string",
                     "x".join(map(str, array.chunks)), "x".join(map(str, array.shards)) if array.shards else "-",
                     _size(on_disk), ratio])
    return table(rows, ["array", "shape", "dtype", "chunk", "shard", "on disk", "ratio"], right={5, 6})


def completion(root: Path, group: zarr.Group, arrays: dict[str, zarr.Array], n_shards: int, n: int) -> list[str]:
    """Shards flagged done per stage flag, and per (model, explainer) the shard files actually present."""
    rows = []
    for name in (a for a in arrays if is_progress_flag(a)):
        rows.append([name, f"{int(np.asarray(arrays[name][:], bool).sum())} / {n_shards} shards done"])
    for model in store_models(group):
        written = {}  # explainer -> shard files present (None: not started)
        for explainer in store_explainers(group):
            name = saliency_name(model, explainer)
            written[explainer] = (sum((root / name / key).is_file() for key in storage_files(arrays[name], slice(0, n)))
                                  if name in arrays else None)
        if len(set(written.values())) == 1 and None not in written.values():  # the usual case: one line per model
            rows.append([model, f"{next(iter(written.values()))} / {n_shards} shard files written of each of "
                                f"{', '.join(written)}"])
            continue
        rows += [[f"{model}/{e}", "not started" if count is None else f"{count} / {n_shards} shard files written"]
                 for e, count in written.items()]
    return table(rows, ["", ""])[1:]


def input_report(group: zarr.Group) -> dict:
    status = np.asarray(group[INDEX_STATUS][:])
    bad = np.flatnonzero(status == STATUS_BAD)
    paths, errors = group[INDEX_PATH], group[INDEX_ERROR]
    codes, counts = np.unique(np.asarray(group[INDEX_CLASS_SOURCE][:]), return_counts=True)
    sources = {CLASS_SOURCES.get(int(code), f"code {code}"): int(count) for code, count in zip(codes, counts)}
    return {"ok": int((status == STATUS_OK).sum()), "bad": int(len(bad)), "pending": int((status == STATUS_PENDING).sum()),
            "class_sources": sources,
            "bad_images": [{"index": int(i), "path": str(paths[int(i)]),
                            "error": str(errors[int(i)])}
                           for i in bad[:MAX_LISTED]]}


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return round(float(values.mean()), 4) if len(values) else None


def label_report(group: zarr.Group, shares: np.ndarray) -> dict | None:
    use = labelled_images(group)
    if MASK not in group or not use.any():
        return None
    fg, ignore, weight = shares[use].T
    decided = 1.0 - ignore  # every image has S x S pixels: the pooled mean weight weighs images by decided pixels
    pooled = float(np.nansum(weight * decided) / decided.sum()) if decided.sum() > 0 else None
    return {"images": int(use.sum()), "fg_share": _mean(fg), "ignore_share": _mean(ignore),
            "mean_weight": None if pooled is None else round(pooled, 4),
            "consensus_stored": CONSENSUS in group, "fuse": fuse_settings(group)}


def low_probability_report(group: zarr.Group, probability: np.ndarray, threshold: float) -> dict:
    low = np.flatnonzero(is_low(probability, np.asarray(group[INDEX_STATUS][:]), threshold))
    low = low[np.argsort(probability[low], kind="stable")]
    classes, targets, paths = class_names(group), np.asarray(group[INDEX_TARGET][:]), group[INDEX_PATH]
    return {"threshold": threshold, "count": int(len(low)), "models": len(store_models(group)),
            "images": [{"index": int(i), "path": str(paths[int(i)]), "target": class_title(classes, int(targets[i])),
                        "target_prob": round(float(probability[i]), 4)} for i in low[:MAX_LISTED]]}


def low_probability_line(store_path: str | Path, threshold: float = LOW_TARGET_PROBABILITY) -> str:
    """generate-labels' last word on the targets: how many images the classifiers barely see."""
    group = open_store(store_path, mode="r")
    low = low_probability_images(group, threshold)
    ok = int((np.asarray(group[INDEX_STATUS][:]) == STATUS_OK).sum())
    return (f"low target probability: {int(low.sum())} of {ok} images below {threshold:g} (mean over "
            f"{len(store_models(group))} models); `python -m pipeline inspect {store_path}` lists them")


def class_report(group: zarr.Group, probability: np.ndarray, shares: np.ndarray) -> list[dict]:
    """Per target class: images, ok/bad, mean target probability, shares and weight, its lowest-weight images."""
    targets = np.asarray(group[INDEX_TARGET][:]).astype(np.int64)
    status = np.asarray(group[INDEX_STATUS][:])
    classes = class_names(group)
    weight = shares[:, SHARES.index("mean_weight")]
    order = np.lexsort((np.where(np.isnan(weight), np.inf, weight), targets))  # by class, then weight
    out = []
    for class_id in np.unique(targets):
        members = order[targets[order] == class_id]
        labelled = members[~np.isnan(weight[members])]
        out.append({"class_id": int(class_id), "name": class_title(classes, int(class_id)),
                    "images": int(len(members)), "ok": int((status[members] == STATUS_OK).sum()),
                    "bad": int((status[members] == STATUS_BAD).sum()),
                    "mean_target_prob": _mean(probability[members]),
                    **{key: _mean(shares[members, i]) for i, key in enumerate(SHARES)},
                    "lowest_weight": [int(i) for i in labelled[:LOWEST_PER_CLASS]]})
    return out


def _section(build):
    """A section of the report, or {"unreadable": why}: a damaged store is reported, not raised."""
    try:
        return build()
    except Exception as error:  # noqa: BLE001 - any codec failure of a damaged shard
        return {"unreadable": f"{type(error).__name__}: {' '.join(str(error).split())[:200]} "
                              "(`inspect --verify` names the damaged shards)"}


def report(store_path: str | Path, low_prob: float = LOW_TARGET_PROBABILITY, arrays: bool = False) -> dict:
    """The whole report as plain data (what `--json` prints)."""
    root = Path(store_path)
    group = open_store(root, mode="r")
    listed = list_arrays(group)
    n, k = n_images(group), shard_size(group)
    n_shards = shard_count(n, k)
    probability = _section(lambda: target_probability(group))
    shares = _section(lambda: label_statistics(group))
    readable = isinstance(probability, np.ndarray) and isinstance(shares, np.ndarray)
    unreadable = {"unreadable": (probability if not isinstance(probability, np.ndarray) else shares).get("unreadable")
                  } if not readable else None
    out = {
        "store": str(root), "images": n, "shard_size": k, "shards": n_shards, "map_size": map_size(group),
        "models": store_models(group), "explainers": store_explainers(group), "data_root": data_root(group),
        "created": group.attrs.get("created"),
        "completion": completion(root, group, listed, n_shards, n),
        "inputs": _section(lambda: input_report(group)),
        "labels": unreadable or _section(lambda: label_report(group, shares)),
        "low_target_probability": unreadable or _section(lambda: low_probability_report(group, probability, low_prob)),
        "classes": unreadable or _section(lambda: class_report(group, probability, shares)),
    }
    if arrays:
        out["arrays"] = array_table(root, listed)
    return out


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fuse_lines(settings: dict) -> list[str]:
    """The fuse config as `key value` words wrapped to a readable width, members counted, not listed."""
    members = settings.get("members", [])
    models = list(dict.fromkeys(m for m, _ in members))
    words = [f"members: {len(members)} ({len(models)} models x {len(members) // max(len(models), 1)} explainers)"]
    for key, value in settings.items():
        if key == "members":
            continue
        if isinstance(value, dict) and value:  # one setting per word: crf.temperature 0.05
            words += [f"{key}.{k} {v:g}" if isinstance(v, float) else f"{key}.{k} {v}" for k, v in value.items()]
        else:
            words.append(f"{key} {value if value != {} else '{}'}")
    lines = ["fuse: " + words[0]]
    for word in words[1:]:  # wrapped between settings, never inside one
        if len(lines[-1]) + len(word) + 2 > FUSE_LINE_WIDTH:
            lines[-1] += ";"
            lines.append("      " + word)
        else:
            lines[-1] += "; " + word
    return lines


def _unreadable(section) -> list[str] | None:
    return [f"unreadable: {section['unreadable']}"] if isinstance(section, dict) and "unreadable" in section else None


def render(data: dict, classes_shown: int = CLASSES_SHOWN) -> str:
    """The report as text: short answers first, details after."""
    out = [f"store {data['store']}",
           f"  {data['images']} images, shard size {data['shard_size']} ({data['shards']} shards), "
           f"map size {data['map_size']}",
           f"  models {', '.join(data['models']) or '-'}; explainers {', '.join(data['explainers']) or '-'}",
           f"  data root {data['data_root']}, created {data['created'] or '?'}"]
    labels = data["labels"]
    out += ["", "labels"] + ["  " + line for line in _unreadable(labels) or (
        ["not fused yet"] if labels is None else
        [f"over {labels['images']} fused images with status ok:",
         f"foreground {_percent(labels['fg_share'])}, ignore {_percent(labels['ignore_share'])}, "
         f"mean weight over non-ignore {_number(labels['mean_weight'])}",
         f"consensus stored: {'yes' if labels['consensus_stored'] else 'no'}"] + _fuse_lines(labels["fuse"]))]
    low = data["low_target_probability"]
    if _unreadable(low):
        out += ["", "low target probability"] + ["  " + line for line in _unreadable(low)]
    else:
        out += ["", f"low target probability (mean over {low['models']} models < {low['threshold']:g}): "
                    f"{low['count']} image(s)"]
        out += ["  " + line for line in table([[f"[{i['index']}]", i["path"], i["target"], f"{i['target_prob']:.4f}"]
                                              for i in low["images"]], ["image", "path", "target", "p"], right={3})
                ] if low["images"] else []
        if low["count"] > len(low["images"]):
            out.append(f"  ... and {low['count'] - len(low['images'])} more (--json lists {MAX_LISTED})")
    out += ["", *_class_lines(data["classes"], classes_shown)]
    inputs = data["inputs"]
    out += ["", "inputs"] + ["  " + line for line in _unreadable(inputs) or _input_lines(inputs)]
    out += ["", "completion"] + ["  " + line for line in data["completion"]]
    if "arrays" in data:
        out += ["", "arrays"] + ["  " + line for line in data["arrays"]]
    else:
        out += ["", "(the array table: --arrays)"]
    return "\n".join(out)


def _class_lines(classes, shown: int) -> list[str]:
    if _unreadable(classes):
        return ["classes", "  " + _unreadable(classes)[0]]
    worst = sorted(classes, key=lambda c: (c["mean_weight"] is None, c["mean_weight"] or 0.0))[:shown]
    rows = [[c["class_id"], c["name"], c["images"], c["ok"], c["bad"], _number(c["mean_target_prob"]),
             _percent(c["fg_share"]), _percent(c["ignore_share"]), _number(c["mean_weight"]),
             " ".join(map(str, c["lowest_weight"])) or "-"] for c in worst]
    title = (f"classes: {len(classes)} (by mean weight, lowest first)" if len(worst) == len(classes)
             else f"classes: the {len(worst)} of {len(classes)} with the lowest mean weight (--classes N, --json: all)")
    return [title] + ["  " + line for line in table(
        rows, ["id", "class", "images", "ok", "bad", "p(target)", "fg", "ignore", "weight", "lowest-weight images"],
        right={0, 2, 3, 4, 5, 6, 7, 8})]


def _input_lines(inputs: dict) -> list[str]:
    lines = [f"{inputs['ok']} ok, {inputs['bad']} bad, {inputs['pending']} pending"]
    lines.append("class ids: " + ", ".join(f"{count} from {source}" for source, count in inputs["class_sources"].items()))
    lines += [f"  [{i['index']}] {i['path']}: {i['error']}" for i in inputs["bad_images"]]
    if inputs["bad"] > len(inputs["bad_images"]):
        lines.append(f"  ... and {inputs['bad'] - len(inputs['bad_images'])} more")
    return lines


def summarize(store_path: str | Path, arrays: bool = False, low_prob: float = LOW_TARGET_PROBABILITY,
              classes_shown: int = CLASSES_SHOWN) -> str:
    """The whole report as text (the CLI prints it)."""
    return render(report(store_path, low_prob, arrays), classes_shown)


def image_report(store_path: str | Path, index: int, low_prob: float = LOW_TARGET_PROBABILITY) -> dict:
    """One image: its index row (pipeline/inspect/image_rows.py), its label statistics and whether it is flagged."""
    group = open_store(store_path, mode="r")
    n = n_images(group)
    if not 0 <= index < n:
        raise StoreError(f"image {index} is out of range: the store has {n} images (0..{n - 1})")
    row = index_rows(group, slice(index, index + 1))[0]
    probability = float(target_probability(group)[index])
    row["target_prob"] = None if np.isnan(probability) else round(probability, 4)
    row["low_target_prob"] = row["status"] == "ok" and row["target_prob"] is not None and probability < low_prob
    labelled = bool(labelled_images(group)[index])
    if labelled:
        shares = label_shares(group[MASK][index][None], group[WEIGHT][index][None])[0]
        row["labels"] = {key: round(float(v), 4) for key, v in zip(SHARES, shares)}
    else:
        row["labels"] = None
    return row


def render_image(row: dict, low_prob: float = LOW_TARGET_PROBABILITY) -> str:
    lines = [f"image {row['index']}: {row['path']}",
             f"  class: {row['class']} (id {row['class_id']}, from {row['class_source']}); "
             f"target: {row['target_name']} (id {row['target']})",
             f"  status {row['status']}" + (f": {row['error']}" if row["error"] else "")
             + f"; size {row['size'][0]}x{row['size'][1]}"]
    prob = row["target_prob"]
    flag = f"  (below {low_prob:g}: flagged)" if row["low_target_prob"] else ""
    lines.append(f"  target probability, mean over models: {_number(prob, 4)}{flag}")
    lines += ["  " + line for line in table(
        [[m["model"], f"{m['top1_name']} ({m['top1']})", _number(m["target_prob"], 4)] for m in row["models"]],
        ["model", "top-1", "p(target)"], right={2})]
    labels = row["labels"]
    lines.append("  labels: not fused" if labels is None else
                 f"  labels: foreground {_percent(labels['fg_share'])}, ignore {_percent(labels['ignore_share'])}, "
                 f"mean weight {_number(labels['mean_weight'])}")
    return "\n".join(lines)


def to_json(data: dict) -> str:
    return json.dumps(data, indent=1, default=str)


def write_pictures(store_path: str | Path, out_dir: str | Path | None = None, overlay: list[int] = (),
                   contact: bool = False, contact_images: int = CONTACT_IMAGES) -> list[Path]:
    """Overlay sheets for the `overlay` image indices and, if asked, a contact sheet of the first fused images.

    Pictures go to `out_dir`, by default `<store>.pictures/` beside the store; returns their paths.
    """
    root = Path(store_path)
    group = open_store(root, mode="r")
    if MASK not in group:
        raise StoreError(f"{root} has no labels yet (run the fuse stage first)")
    n = n_images(group)
    out = Path(out_dir) if out_dir is not None else root.with_name(root.name + ".pictures")
    out.mkdir(parents=True, exist_ok=True)
    members = fused_members(group)
    written = []
    pruned = np.repeat(pruned_shards(group, shard_count(n, shard_size(group))), shard_size(group))[:n]
    for index in overlay:
        if not 0 <= index < n:
            raise IndexError(f"overlay image {index} is out of range: the store has {n} images")
        if pruned[index]:
            raise StoreError(f"--overlay {index}: its maps were deleted after fusing (labels-only store, "
                             "store.keep_maps: false); --contact draws the labels")
        written.append(overlay_sheet(group, index, members, out / f"overlay_{index:07d}.png"))
    if contact:
        chosen = np.flatnonzero(labelled_images(group))[:contact_images]
        written.append(contact_sheet(group, [int(i) for i in chosen], out / "contact_sheet.png"))
    return written
