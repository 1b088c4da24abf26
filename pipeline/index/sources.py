"""Where the images come from: an ImageFolder/ImageNet tree, a plain file list, or the embedded sample.

Each source yields (path relative to the data root, class id, how the id was obtained); class -1
means unknown, and the explain stage then uses the ensemble's top-1.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from core.config import ConfigError, typed
from core.errors import PsslError
from core.imagenet_classes import imagenet_class_id, imagenet_synsets
from core.store import (CLASS_FROM_LIST, CLASS_FROM_MAP, CLASS_FROM_POSITION, CLASS_FROM_WNID, CLASS_SOURCES,
                        CLASS_UNKNOWN, UNKNOWN_CLASS)
from core.schema import PipelineConfig
from pipeline.index.sample import materialize_sample

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class DatasetError(PsslError, ValueError):
    """A dataset that cannot be indexed; the CLI prints the message as one line."""


def image_folder(root: Path, class_map: dict[str, int] | None = None,
                 by_position: bool = False) -> tuple[list[str], list[int], list[int], list[str] | None]:
    """ImageNet's train layout `<root>/<class folder>/*` -> (paths, class ids, class sources, class names).

    A folder's id comes from `class_map` if it lists the folder, else from its ImageNet WordNet id;
    any other folder is unknown (its images are explained with the ensemble's top-1). The position
    of the folder among the sorted folders is used only with `by_position`: a part of ImageNet would
    otherwise be explained as the wrong classes.
    """
    folders = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    paths, labels, sources = [], [], []
    for position, name in enumerate(folders):
        class_id, source = _folder_class(name, position, class_map or {}, by_position)
        for file in sorted((root / name).rglob("*")):
            if file.suffix.lower() in IMAGE_SUFFIXES and (file.is_file() or file.is_symlink()):
                paths.append(file.relative_to(root).as_posix())
                labels.append(class_id)
                sources.append(source)
    if by_position:
        classes = folders
    elif any(source == CLASS_FROM_WNID for source in sources):
        classes = list(imagenet_synsets())
    else:
        classes = None
    return paths, labels, sources, classes


def _folder_class(name: str, position: int, class_map: dict[str, int], by_position: bool) -> tuple[int, int]:
    if by_position:
        return position, CLASS_FROM_POSITION
    if name in class_map:
        return class_map[name], CLASS_FROM_MAP
    wnid_class = imagenet_class_id(name)
    if wnid_class is not None:
        return wnid_class, CLASS_FROM_WNID
    return UNKNOWN_CLASS, CLASS_UNKNOWN


def read_class_map(path: Path) -> dict[str, int]:
    """Lines `folder_name class_id`; blank lines and `#` comments are skipped."""
    if not path.is_file():
        raise DatasetError(f"class map not found: {path} (data.class_map)")
    mapping = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise DatasetError(f"{path}:{number}: expected `folder_name class_id`, got {line!r}")
        mapping[parts[0]] = int(parts[1])
    return mapping


def file_list(root: Path, list_file: Path) -> tuple[list[str], list[int]]:
    """Lines `relative/path [class_id]`; blank lines and `#` comments are skipped."""
    if not list_file.is_file():
        raise DatasetError(f"file list not found: {list_file}")
    paths, labels = [], []
    for line in list_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            paths.append(parts[0])
            labels.append(int(parts[1]))
        else:
            paths.append(line)
            labels.append(UNKNOWN_CLASS)
    return paths, labels


class Listing(NamedTuple):
    root: Path
    paths: list[str]
    class_ids: list[int]
    class_sources: list[int]  # core.store CLASS_* codes: how each class id was obtained
    classes: list[str] | None  # the names class ids refer to, when known


def enumerate_images(config: PipelineConfig | dict, run_dir: Path) -> Listing:
    """The configured source's images, their class ids and how each id was obtained."""
    config = typed(config, PipelineConfig)
    data = config.data
    source = data.source
    if source == "sample":
        root = materialize_sample(run_dir / "sample_images")
        paths = sorted(p.name for p in root.iterdir() if p.is_file())
        # unknown classes, but the ensemble's top-1 is an ImageNet-1k class: record that list so ids have names
        return Listing(root, paths, [UNKNOWN_CLASS] * len(paths), [CLASS_UNKNOWN] * len(paths), list(imagenet_synsets()))
    root_value = data.root
    if not root_value:
        raise DatasetError(f"data.source={source} needs data.root=<directory>")
    root = Path(root_value).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data root does not exist or is not a directory: {root}")
    if source == "imagefolder":
        paths, labels, sources, classes = image_folder(
            root, read_class_map(Path(data.class_map)) if data.class_map else None, data.class_ids_by_position)
    elif source == "filelist":
        if not data.file_list:
            raise DatasetError("data.source=filelist needs data.file_list=<file of `path class_id` lines>")
        paths, labels = file_list(root, Path(data.file_list))
        sources = [CLASS_UNKNOWN if label == UNKNOWN_CLASS else CLASS_FROM_LIST for label in labels]
        classes = None
    else:
        raise ConfigError(f"data.source must be sample, imagefolder or filelist, not {source!r}")
    if not paths:
        raise DatasetError(f"no images found under {root} (data.source={source})")
    _check_class_range(labels, sources, config.explain.num_classes)
    return Listing(root, paths, labels, sources, classes)


def _check_class_range(labels: list[int], sources: list[int], num_classes: int) -> None:
    """A class id the classifiers cannot predict would be explained as nothing: refuse it up front."""
    for label, source in zip(labels, sources):
        if not UNKNOWN_CLASS <= label < num_classes:
            raise DatasetError(f"class id {label} ({CLASS_SOURCES[source]}) is outside 0..{num_classes - 1} "
                               "(explain.num_classes)")
