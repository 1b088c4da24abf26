"""The store contract: what a PSSL Zarr v3 store holds, who writes it, and how to read it.

Every stage and the training datasets talk only through this store, and every array name, flag
name, label value and root attribute is spelled here and nowhere else.

| array | written by (flag) |
|---|---|
| index/{path,class_id,class_source,height,width,status,error} | index (`progress/index/images`) |
| index/target | explain (`progress/explain/<model>`, resolved before any map) |
| scores/<model>/{target_prob,top1}, predictions/<model> | classify (`progress/classify/<model>`) |
| saliency/<model>/<explainer>{,_scale,_q99} | explain (`progress/explain/<model>`); the map array's |
|   | `encoding` attribute says how it keeps the maps (ENCODINGS; pipeline/maps/stored.py reads them all) |
| saliency/<object model>/objectness{,_scale,_q99} | explain (`progress/explain/<object model>`): the class- |
|   | agnostic object map in [0, 1], ENCODING_UNIT with q99 1 (the map itself, 8-bit) |
| pssl/{mask,weight,consensus} | fuse (`progress/fuse/labels`) |

Per-image arrays have one image per chunk and `shard_size` images per shard, so one task writing one
shard is the only writer of its file. Progress flags are written by the driver alone, one file per
flag, after a task has returned.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import warnings
from pathlib import Path

import numpy as np
import yaml
import zarr

from core.errors import PsslError

# --- the index -------------------------------------------------------------------------------------
STATUS_PENDING, STATUS_OK, STATUS_BAD = 0, 1, 2
UNKNOWN_CLASS = -1
INDEX_PATH, INDEX_CLASS_ID, INDEX_TARGET = "index/path", "index/class_id", "index/target"
INDEX_HEIGHT, INDEX_WIDTH, INDEX_STATUS, INDEX_ERROR = "index/height", "index/width", "index/status", "index/error"
INDEX_CLASS_SOURCE = "index/class_source"
# How index/class_id was obtained, per image (CLASS_NOT_RECORDED: a store of format 1).
CLASS_NOT_RECORDED, CLASS_UNKNOWN, CLASS_FROM_WNID, CLASS_FROM_MAP, CLASS_FROM_POSITION, CLASS_FROM_LIST = range(6)
CLASS_SOURCES = {
    CLASS_NOT_RECORDED: "not recorded",
    CLASS_UNKNOWN: "unknown (target = ensemble top-1)",
    CLASS_FROM_WNID: "ImageNet WordNet id of the folder",
    CLASS_FROM_MAP: "data.class_map file",
    CLASS_FROM_POSITION: "folder position (data.class_ids_by_position)",
    CLASS_FROM_LIST: "class id in data.file_list",
}
# name -> (dtype, fill): one entry per image, one chunk per shard
INDEX_SCHEMA = {
    INDEX_PATH: (str, ""),
    INDEX_CLASS_ID: (np.int16, UNKNOWN_CLASS),
    INDEX_CLASS_SOURCE: (np.uint8, CLASS_NOT_RECORDED),
    INDEX_TARGET: (np.int16, UNKNOWN_CLASS),
    INDEX_HEIGHT: (np.int32, 0),
    INDEX_WIDTH: (np.int32, 0),
    INDEX_STATUS: (np.uint8, STATUS_PENDING),
    INDEX_ERROR: (str, ""),
}

# --- the labels ------------------------------------------------------------------------------------
BACKGROUND, FOREGROUND, IGNORE = 0, 1, 255
WEIGHT_SCALE = 255  # pssl/weight holds confidence x 255
LABELS_PREFIX = "pssl/"
MASK, WEIGHT, CONSENSUS = LABELS_PREFIX + "mask", LABELS_PREFIX + "weight", LABELS_PREFIX + "consensus"

# --- how each saliency array keeps its maps: its ENCODING attribute -------------------------------------
ENCODING = "encoding"
ENCODING_FULL = "float16_map"  # [N, S, S] float16: map / its max-abs
ENCODING_GRID = "feature_grid"  # [N, h, w] float32: the raw CAM at its layer's grid; INPUT_SIZE says how to resize it
ENCODING_UNIT = "uint8_unit"  # [N, S, S] uint8: round(LEVELS * min(1, relu(map) / q99)), all that fusion reads
INPUT_SIZE = "input_size"  # ENCODING_GRID: the classifier's input size the CAM was upsampled to before map_size
LEVELS = "levels"  # ENCODING_UNIT: the number of levels above 0
UNIT_LEVELS = 255
ENCODINGS = (ENCODING_FULL, ENCODING_GRID, ENCODING_UNIT)

# --- the class-agnostic object map: one more member of the explain stage, named by root attribute OBJECTNESS_ATTR
OBJECTNESS = "objectness"  # the explainer name of its map: saliency/<object model>/objectness
OBJECTNESS_ATTR = "objectness_model"

# --- stages and their progress flags (progress/<stage>/<key>) ---------------------------------------
INDEX_STAGE, INDEX_KEY = "index", "images"
CLASSIFY_STAGE = "classify"  # key: the model
EXPLAIN_STAGE = "explain"  # key: the model
FUSE_STAGE, FUSE_KEY = "fuse", "labels"
PRUNE_STAGE, PRUNE_KEY = "prune", "maps"  # a labels-only store (store.keep_maps: false): the shard's maps are gone
PROGRESS_PREFIX = "progress/"

PACKAGES = ("torch", "captum", "lime", "zarr", "dask", "ray", "numpy", "scikit-image")
# Write chunks even when they hold only the fill value: a finished shard then always has its file, so
# `pipeline.inspect.verify` can tell a deleted shard from an empty one (zarr reads a missing file as fill).
zarr.config.set({"array.write_empty_chunks": True})
# Smooth maps are stored through numcodecs' delta filter (pipeline/maps/stored.py): zarr-python reads it
# with numcodecs, one of its own dependencies; say so once in docs/store.md, not on every array opened.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")


class StoreError(PsslError, RuntimeError):
    """A store that is missing, or lacks what a stage needs."""


def saliency_name(model: str, explainer: str) -> str:
    return f"saliency/{model}/{explainer}"


def scale_name(model: str, explainer: str) -> str:
    return f"saliency/{model}/{explainer}_scale"


def q99_name(model: str, explainer: str) -> str:
    """The 99th percentile of each stored map's positive part, the fuse rule's per-map scale (NaN = not stored)."""
    return f"saliency/{model}/{explainer}_q99"


def map_encoding(array: zarr.Array) -> str:
    """How a saliency array keeps its maps (ENCODINGS)."""
    encoding = array.attrs.get(ENCODING)
    if encoding not in ENCODINGS:
        raise StoreError(f"{array.path} has unknown encoding {encoding!r} (written by a newer version?)")
    return encoding


def unit_levels(array: zarr.Array) -> int:
    """How many levels above 0 an ENCODING_UNIT array spends on min(1, relu(map) / q99)."""
    return int(array.attrs[LEVELS])


def score_name(model: str) -> str:
    """Softmax probability of the target class; `top1_name` holds the model's top-1 prediction."""
    return f"scores/{model}/target_prob"


def top1_name(model: str) -> str:
    return f"scores/{model}/top1"


def prediction_name(model: str) -> str:
    """Full class probabilities, written only where the image's class is unknown (for the ensemble top-1)."""
    return f"predictions/{model}"


def progress_name(stage: str, key: str) -> str:
    return f"{PROGRESS_PREFIX}{stage}/{key}"


def is_progress_flag(name: str) -> bool:
    return name.startswith(PROGRESS_PREFIX) and name.count("/") == 2


def flag_covers(stage: str, key: str) -> tuple[str, ...]:
    """The arrays a progress flag vouches for: exact names, or prefixes ending in '/'."""
    if stage == INDEX_STAGE:
        return tuple(name for name in INDEX_SCHEMA if name != INDEX_TARGET)
    if stage == CLASSIFY_STAGE:
        return (f"scores/{key}/", prediction_name(key))
    if stage == EXPLAIN_STAGE:  # scores too: a known-class run writes them in the explain pass
        return (f"saliency/{key}/", f"scores/{key}/", INDEX_TARGET)
    if stage == FUSE_STAGE:
        return (LABELS_PREFIX,)
    return ()


def dropped_when_pruned(name: str) -> bool:
    """Whether a labels-only store drops this array's shards once they are fused: the maps (with their scale and
    q99) and the full class probabilities; the index, scores and labels stay."""
    return name.startswith(("saliency/", "predictions/"))


def pruned_shards(group: zarr.Group, n_shards: int) -> np.ndarray:
    """bool [shards]: shards whose maps a labels-only store has dropped after fusing them."""
    return read_flags(group, PRUNE_STAGE, PRUNE_KEY, n_shards)


def shard_count(n_images: int, shard_size: int) -> int:
    return -(-n_images // shard_size)


def shard_slice(shard: int, shard_size: int, n_images: int) -> slice:
    return slice(shard * shard_size, min((shard + 1) * shard_size, n_images))


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def open_store(path: str | Path, mode: str = "r+") -> zarr.Group:
    """Open without consolidated metadata: stages add arrays while others read. Every node's metadata
    is checked first (zarr reads it lazily and fails deep inside a stage with a JSON traceback). A store
    of an older format is upgraded when opened for writing and refused, naming the command, when opened to read."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"no Zarr store at {path} (run `make generate-labels` first)")
    problem = metadata_problem(path)
    if problem:
        raise StoreError(problem)
    return _current_format(zarr.open_group(str(path), mode=mode, use_consolidated=False), path, mode != "r")


ARRAY_METADATA_KEYS = ("shape", "data_type", "chunk_grid", "codecs")


def _damaged_metadata(path: Path, name: str, what: str) -> str:
    where = f"{name}/zarr.json" if name else "zarr.json"
    if not name or name.startswith("index"):  # the index is made once: nothing re-creates it from the images
        return f"{path}: {where} is damaged ({what}); restore it, or start a new run (run.name=...)"
    return f"{path}: {where} is damaged ({what}); delete {name} and re-run generate-labels with its config.yaml"


def metadata_problem(path: Path, name: str = "") -> str | None:
    """The first node of the store whose zarr.json cannot be read, as one line with what to do, or None.

    Walks groups only (an array's chunk folders are never listed), so it costs one small read per node.
    """
    try:
        node = json.loads((path / name / "zarr.json").read_bytes())
    except (OSError, ValueError):
        return _damaged_metadata(path, name, "not valid JSON")
    kind = node.get("node_type") if isinstance(node, dict) else None
    needed = ARRAY_METADATA_KEYS if kind == "array" else ()
    if kind not in ("group", "array") or node.get("zarr_format") != 3 or any(key not in node for key in needed):
        return _damaged_metadata(path, name, "not Zarr v3 metadata")
    if kind == "group":
        for child in sorted((path / name).iterdir()):
            if child.is_dir() and (child / "zarr.json").exists():
                found = metadata_problem(path, f"{name}/{child.name}".lstrip("/"))
                if found:
                    return found
    return None


def create_store(path: str | Path, config: dict) -> zarr.Group:
    """Open or create the store; `config` is recorded only when it is created (see record_config)."""
    group = zarr.open_group(str(path), mode="a", use_consolidated=False)
    if "created" not in group.attrs:
        group.attrs.update(
            {
                "created": datetime.datetime.now(datetime.UTC).isoformat(),
                "versions": package_versions(),
                FORMAT: FORMAT_VERSION,
                "config": config,
            }
        )
    return _current_format(group, Path(path), writable=True)


# --- the store's format: what a reader may assume. 1: stores before the version was recorded -------
FORMAT, FORMAT_VERSION = "format_version", 2
UPGRADE_COMMAND = "python -m pipeline upgrade-store"
# what a format-1 store's fuse attribute lacks, with what those labels were made with
FORMAT_1_FUSE = {"threshold_rule": "fixed", "otsu_range": [0.0, 1.0], "smooth": {}, "refine": "none", "crf": None,
                 "combine": "none"}


def format_version(group: zarr.Group) -> int:
    return int(group.attrs.get(FORMAT, 1))


def upgrade_in_place(path: str | Path) -> int:
    """Bring the store at `path` to FORMAT_VERSION; returns the format it had."""
    if not (Path(path) / "zarr.json").is_file():
        raise StoreError(f"no Zarr store at {path}")
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    before = format_version(group)
    _current_format(group, Path(path), writable=True)
    return before


def _current_format(group: zarr.Group, path: Path, writable: bool) -> zarr.Group:
    version = format_version(group)
    if version > FORMAT_VERSION:
        raise StoreError(f"{path} has store format {version}, newer than this code's {FORMAT_VERSION}: "
                         "update the code to read it")
    if version < FORMAT_VERSION:
        if not writable:
            raise StoreError(f"{path} has store format {version}, older than {FORMAT_VERSION}: "
                             f"`{UPGRADE_COMMAND} {path}` rewrites it (in place, in seconds)")
        upgrade_store(group)
    return group


def upgrade_store(group: zarr.Group) -> None:
    """Rewrite a format-1 store as format 2: what its readers used to guess is written down.

    Saliency arrays get their encoding (format 1 kept whole float16 maps, or 255 levels), maps get a
    q99 array (NaN: the fuse kernel computes it), images their class-id source (not recorded), and
    the fuse attribute every rule key (as those labels were made)."""
    arrays = set(_array_names(group))
    n = group[INDEX_PATH].shape[0] if INDEX_PATH in arrays else 0
    for model in group.attrs.get("models", []):
        for explainer in group.attrs.get("explainers", []):
            name = saliency_name(model, explainer)
            if name not in arrays:
                continue
            array = group[name]
            if ENCODING not in array.attrs:
                array.attrs[ENCODING] = ENCODING_FULL
            if array.attrs[ENCODING] == ENCODING_UNIT and LEVELS not in array.attrs:
                array.attrs[LEVELS] = UNIT_LEVELS
            if q99_name(model, explainer) not in arrays:
                _written_array(group, q99_name(model, explainer), n, np.float32, np.nan)
    if INDEX_PATH in arrays and INDEX_CLASS_SOURCE not in arrays:
        _written_array(group, INDEX_CLASS_SOURCE, n, np.uint8, CLASS_NOT_RECORDED)
    if "fuse" in group.attrs:
        group.attrs["fuse"] = {**FORMAT_1_FUSE, **group.attrs["fuse"]}
    group.attrs[FORMAT] = FORMAT_VERSION


def _array_names(group: zarr.Group) -> list[str]:
    return [name for name, _ in group.arrays()] + [f"{key}/{name}" for key, sub in group.groups()
                                                   for name in _array_names(sub)]


def _written_array(group: zarr.Group, name: str, n: int, dtype, value) -> None:
    """A per-image array holding `value`, its chunk files written (a missing file would read as damage)."""
    array = group.create_array(name, shape=(n,), dtype=dtype, chunks=(shard_size(group),), fill_value=value,
                               config={"write_empty_chunks": True})
    array[:] = np.full(n, value, dtype)


def record_config(group: zarr.Group, path: str | Path, config: dict) -> None:
    """The config a stage was accepted with, in the store and as config.yaml beside it.

    Called by a stage only after its checks against the store pass, so a refused run leaves both
    describing what the store holds.
    """
    if group.attrs.get("config") != config:
        group.attrs["config"] = config
    file, text = Path(path).parent / "config.yaml", yaml.safe_dump(config, sort_keys=False)
    if not file.is_file() or file.read_text() != text:  # written whole or not at all (a full disk keeps the old)
        partial = file.with_name(file.name + ".partial")
        partial.write_text(text)
        partial.replace(file)


def n_images(group: zarr.Group) -> int:
    return group[INDEX_PATH].shape[0]


# --- root attributes -------------------------------------------------------------------------------
def shard_size(group: zarr.Group) -> int:
    return int(group.attrs["shard_size"])


def map_size(group: zarr.Group) -> int:
    return int(group.attrs["map_size"])


def data_root(group: zarr.Group) -> str | None:
    return group.attrs.get("data_root")


def store_models(group: zarr.Group) -> list[str]:
    return list(group.attrs.get("models", []))


def store_explainers(group: zarr.Group) -> list[str]:
    return list(group.attrs.get("explainers", []))


def class_names(group: zarr.Group) -> list[str] | None:
    """The class list (WordNet ids for ImageNet) that index/class_id and index/target refer to."""
    return group.attrs.get("classes")


def store_objectness(group: zarr.Group) -> str | None:
    """The name of the object model whose maps the store holds (saliency/<name>/objectness), or None."""
    return group.attrs.get(OBJECTNESS_ATTR)


def fuse_settings(group: zarr.Group) -> dict:
    """The label-defining fuse settings the store's labels were made with ({} before any fuse run)."""
    return dict(group.attrs.get("fuse", {}))


def recorded_map_settings(group: zarr.Group) -> dict:
    """The map-defining explain settings the store's maps were made with ({} before they were recorded)."""
    return dict(group.attrs.get("map_settings", {}))


def fused_members(group: zarr.Group) -> list[tuple[str, str]]:
    return [tuple(m) for m in fuse_settings(group).get("members", [])]


def is_indexed(group: zarr.Group) -> bool:
    """True once the index stage has written the image list (paths and classes) of this store."""
    return bool(group.attrs.get("index_written"))


def write_layout(group: zarr.Group, **attrs) -> None:
    """Record root attributes (shard_size, map_size, data_root, models, explainers, objectness_model, classes, fuse,
    map_settings)."""
    group.attrs.update(attrs)


def require_array(group: zarr.Group, name: str, shape: tuple, dtype, per_image_chunk: tuple | None = None,
                  fill_value=0, compressors="auto", filters="auto") -> zarr.Array:
    """Create `name` if missing (shards of `shard_size` images) or return it after checking its shape.

    `per_image_chunk` is the shape of one image's entry; None means a 1-D per-image array,
    stored as one chunk per shard.
    """
    k = shard_size(group)
    if name in group:
        array = group[name]
        if tuple(array.shape) != tuple(shape):
            raise StoreError(f"{name} has shape {array.shape}, expected {shape}: was the store made "
                             "with another config? Use a new run name.")
        return array
    if per_image_chunk is None:
        return group.create_array(name, shape=shape, dtype=dtype, chunks=(k,), fill_value=fill_value)
    return group.create_array(name, shape=shape, dtype=dtype, chunks=(1, *per_image_chunk),
                              shards=(k, *per_image_chunk), fill_value=fill_value, compressors=compressors,
                              filters=filters)


def create_index_arrays(group: zarr.Group, n: int, overwrite: bool = False) -> dict[str, zarr.Array]:
    """The index arrays of INDEX_SCHEMA for `n` images (created, or reopened when they exist)."""
    k = shard_size(group)
    return {name: group.create_array(name, shape=(n,), dtype=dtype, chunks=(k,), fill_value=fill, overwrite=True)
            if overwrite else require_array(group, name, (n,), dtype, fill_value=fill)
            for name, (dtype, fill) in INDEX_SCHEMA.items()}


def mark_bad(group: zarr.Group, reasons: dict[int, str]) -> None:
    """Record images as bad input with their reasons (driver-only: the index arrays have one writer)."""
    if reasons:
        rows = np.array(sorted(reasons))
        status, errors = group[INDEX_STATUS][:], group[INDEX_ERROR][:]
        status[rows] = STATUS_BAD
        errors[rows] = [reasons[row] for row in rows]
        group[INDEX_STATUS][:], group[INDEX_ERROR][:] = status, errors


def done_shards(group: zarr.Group, stage: str, key: str, n_shards: int) -> np.ndarray:
    name = progress_name(stage, key)
    if name not in group:
        group.create_array(name, shape=(n_shards,), dtype=bool, chunks=(1,), fill_value=False,
                           compressors=None)
    return np.asarray(group[name][:], dtype=bool)


def mark_done(group: zarr.Group, stage: str, key: str, shard: int) -> None:
    group[progress_name(stage, key)][shard] = True


def read_flags(group: zarr.Group, stage: str, key: str, n_shards: int) -> np.ndarray:
    """A stage's shard flags without creating them (all False when the stage never ran)."""
    name = progress_name(stage, key)
    return np.asarray(group[name][:], bool) if name in group else np.zeros(n_shards, bool)


def clear_labels(group: zarr.Group) -> None:
    """Forget every label, its fuse flags and the recorded fuse settings (the store is then as before fuse)."""
    for name in (LABELS_PREFIX.rstrip("/"), f"{PROGRESS_PREFIX}{FUSE_STAGE}"):
        if name in group:
            del group[name]
    if "fuse" in group.attrs:
        del group.attrs["fuse"]


def clear_model(group: zarr.Group, model: str) -> None:
    """Forget a model's maps, scores, predictions and their flags (its shards are then as never explained)."""
    for name in (f"saliency/{model}", f"scores/{model}", prediction_name(model),
                 progress_name(CLASSIFY_STAGE, model), progress_name(EXPLAIN_STAGE, model)):
        if name in group:
            del group[name]


def fused_images(group: zarr.Group) -> np.ndarray:
    """bool [N]: images whose shard the fuse stage has marked as fully written, whatever their status."""
    n, k = n_images(group), shard_size(group)
    flag = progress_name(FUSE_STAGE, FUSE_KEY)
    if MASK not in group or flag not in group:
        return np.zeros(n, bool)
    per_shard = np.asarray(group[flag][:], bool)
    if per_shard.shape[0] != shard_count(n, k):
        raise StoreError(f"{flag} has {per_shard.shape[0]} shard flags, expected {shard_count(n, k)}")
    return np.repeat(per_shard, k)[:n]


def labelled_images(group: zarr.Group) -> np.ndarray:
    """bool [N]: images whose shard is fused and whose status is ok, i.e. that carry a real label."""
    return fused_images(group) & (np.asarray(group[INDEX_STATUS][:]) == STATUS_OK)
