"""Where the images come from: an ImageFolder/ImageNet tree, a plain file list, or the embedded sample.

Each source yields (path relative to the data root, class id); class -1 means unknown.
"""
from __future__ import annotations

from pathlib import Path

from core.config import ConfigError, get
from core.errors import PsslError
from core.store import UNKNOWN_CLASS
from pipeline.sample_data import materialize_sample

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class DatasetError(PsslError, ValueError):
    """A dataset that cannot be indexed; the CLI prints the message as one line."""


def image_folder(root: Path) -> tuple[list[str], list[int], list[str]]:
    """ImageNet's train layout `<root>/<wnid>/*.JPEG`: class id = position of the wnid among sorted folders."""
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    paths, labels = [], []
    for class_id, name in enumerate(classes):
        for file in sorted((root / name).rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(file.relative_to(root).as_posix())
                labels.append(class_id)
    return paths, labels, classes


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


Listing = tuple[Path, list[str], list[int], "list[str] | None"]


def enumerate_images(config: dict, run_dir: Path) -> Listing:
    """Return (data root, relative paths, class ids, class names or None) for the configured source."""
    source = get(config, "data.source")
    if source == "sample":
        root = materialize_sample(run_dir / "sample_images")
        paths = sorted(p.name for p in root.iterdir() if p.is_file())
        return root, paths, [UNKNOWN_CLASS] * len(paths), None
    root_value = get(config, "data.root", None)
    if not root_value:
        raise DatasetError(f"data.source={source} needs data.root=<directory>")
    root = Path(root_value).expanduser()
    if not root.is_dir():
        raise DatasetError(f"data root does not exist or is not a directory: {root}")
    if source == "imagefolder":
        paths, labels, classes = image_folder(root)
    elif source == "filelist":
        paths, labels = file_list(root, Path(get(config, "data.file_list")))
        classes = None
    else:
        raise ConfigError(f"data.source must be sample, imagefolder or filelist, not {source!r}")
    if not paths:
        raise DatasetError(f"no images found under {root} (data.source={source})")
    return root, paths, labels, classes
