"""The real-photo development set: hand-drawn object masks for the photos that ship with the pinned packages.

Each photo has one YAML file in `annotations/`: where the photo comes from (package, folder, file), its
ImageNet class id and name, a sentence on what the mask covers, and the mask as polygons in the photo's
own pixel coordinates (x, y), drawn by looking at the photo over a coordinate grid. Code renders them
(foreground 1, background 0); nothing else is stored.

It is a DEVELOPMENT set: the fuse defaults were tuned on it, so numbers on it are optimistic. The
known-answer world (docs/known_answer.md) is the held-out yardstick beside it.

    python -m benchmarks.real_photos.devset materialize runs/real_photos   # images, masks, file list
    python -m benchmarks.real_photos.devset overlays docs/img/real_photos_masks.png
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from pipeline.index.sample import sample_path

ANNOTATIONS = Path(__file__).parent / "annotations"
IMAGES, MASKS, FILE_LIST = "images", "masks", "file_list.txt"


class AnnotationError(ValueError):
    """An annotation file that cannot be used (named in the message)."""


@dataclass(frozen=True)
class Annotation:
    name: str
    package: str
    folder: str
    file: str
    class_id: int
    class_name: str
    covers: str
    polygons: tuple[tuple[tuple[float, float], ...], ...]

    @property
    def photo(self) -> Path:
        return sample_path(self.package, self.folder, self.file)


def _parse(path: Path) -> Annotation:
    try:
        raw = yaml.safe_load(path.read_text())
        source = raw["source"]
        polygons = tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in raw["polygons"])
        annotation = Annotation(path.stem, str(source["package"]), str(source["folder"]), str(source["file"]),
                                int(raw["class_id"]), str(raw["class_name"]), str(raw["covers"]), polygons)
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise AnnotationError(f"{path}: not a valid annotation ({type(error).__name__}: {error})") from None
    if not 0 <= annotation.class_id < 1000:
        raise AnnotationError(f"{path}: class_id {annotation.class_id} is not an ImageNet class (0-999)")
    if not polygons or any(len(p) < 3 for p in polygons):
        raise AnnotationError(f"{path}: every polygon needs at least 3 vertices")
    return annotation


def load_annotations(folder: str | Path = ANNOTATIONS) -> list[Annotation]:
    """Every annotation of the development set, sorted by name."""
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise AnnotationError(f"no annotation (*.yaml) in {folder}")
    return [_parse(path) for path in files]


def render_mask(annotation: Annotation) -> np.ndarray:
    """uint8 [H, W] at the photo's own size: 1 inside any polygon, 0 elsewhere."""
    with Image.open(annotation.photo) as photo:
        size = photo.size
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in annotation.polygons:
        draw.polygon(polygon, fill=1)
    mask = np.asarray(canvas, np.uint8)
    if not mask.any():
        raise AnnotationError(f"{annotation.name}: its polygons cover no pixel of the {size[0]}x{size[1]} photo")
    return mask


def materialize(dest: str | Path, annotations: list[Annotation] | None = None) -> Path:
    """Write `dest/images/<file>`, `dest/masks/<stem>.png` (0/1) and `dest/file_list.txt` (`path class_id`)."""
    dest = Path(dest)
    (dest / IMAGES).mkdir(parents=True, exist_ok=True)
    (dest / MASKS).mkdir(parents=True, exist_ok=True)
    lines = []
    for annotation in annotations or load_annotations():
        shutil.copyfile(annotation.photo, dest / IMAGES / annotation.file)
        Image.fromarray(render_mask(annotation)).save(dest / MASKS / f"{Path(annotation.file).stem}.png")
        lines.append(f"{IMAGES}/{annotation.file} {annotation.class_id}")
    (dest / FILE_LIST).write_text("\n".join(lines) + "\n")
    return dest


def overlay(annotation: Annotation, width: int = 320) -> Image.Image:
    """The photo with its mask tinted and its outline drawn, `width` pixels wide."""
    with Image.open(annotation.photo) as photo:
        rgb = photo.convert("RGB")
    mask = render_mask(annotation).astype(bool)
    tinted = np.asarray(rgb, np.float32)
    tinted[mask] = 0.55 * tinted[mask] + 0.45 * np.array([255, 40, 40])
    picture = Image.fromarray(tinted.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for polygon in annotation.polygons:
        draw.line(list(polygon) + [polygon[0]], fill=(255, 255, 0), width=max(1, rgb.width // 200))
    scale = width / picture.width
    return picture.resize((width, max(1, round(picture.height * scale))), Image.LANCZOS)


def contact_sheet(annotations: list[Annotation], path: str | Path, columns: int = 4, width: int = 320) -> Path:
    """Every annotation's overlay on one sheet, captioned with its file and class."""
    tiles = [overlay(a, width) for a in annotations]
    row_height = max(t.height for t in tiles) + 16
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * width, rows * row_height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (tile, annotation) in enumerate(zip(tiles, annotations)):
        x, y = (i % columns) * width, (i // columns) * row_height
        sheet.paste(tile, (x, y + 16))
        draw.text((x + 3, y + 2), f"{annotation.file}: {annotation.class_name.split(',')[0]} ({annotation.class_id})",
                  fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_photos.devset", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("materialize", help="write images, 0/1 masks and a file list")
    make.add_argument("dest")
    sheet = commands.add_parser("overlays", help="a contact sheet of every mask over its photo")
    sheet.add_argument("path")
    sheet.add_argument("--only", nargs="*", help="annotation names (default: all)")
    args = parser.parse_args(argv)
    try:
        annotations = load_annotations()
        if args.command == "materialize":
            print(materialize(args.dest, annotations))
        else:
            chosen = [a for a in annotations if not args.only or a.name in args.only]
            print(contact_sheet(chosen, args.path, columns=min(4, len(chosen))))
    except AnnotationError as error:
        print(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
