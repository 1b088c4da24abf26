"""The real-photo development set: hand-drawn object masks for real photos that ship in registry packages.

Each photo has one YAML file in `annotations/`: where the photo comes from (the registry — an installed
Python package, or a Debian package pinned in benchmarks/debian_packages.py — then package, folder, file), its
ImageNet class id and name, a sentence on what the mask covers, whether the photo is a single-object photo or a
multi-object scene, which half it belongs to (`tune` or `report`), and the mask as polygons in the photo's own
pixel coordinates (x, y), drawn by looking at the photo over a coordinate grid. Code renders them
(foreground 1, background 0); nothing else is stored.

The `tune` half is what defaults are chosen on (the first twelve photos were tuned on); the `report` half is
only reported, so its numbers are the honest ones. docs/label_quality.md has the split rule.

    python -m benchmarks.real_photos.devset materialize runs/real_photos/data [--split tune|report|all]
    python -m benchmarks.real_photos.devset overlays docs/img/real_photos_report.png --split report --columns 6
    python -m benchmarks.real_photos.devset grid /tmp/view.png --name orange [--box 0 0 200 200] [--polygons]
    python -m benchmarks.real_photos.devset summary
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from benchmarks import debian_packages
from benchmarks.real_photos.drawing_aids import grid_view
from pipeline.index.sample import sample_path

ANNOTATIONS = Path(__file__).parent / "annotations"
IMAGES, MASKS, FILE_LIST = "images", "masks", "file_list.txt"
PYTHON, DEBIAN = "python", "debian"
SPLITS = ("tune", "report")
SCENES = ("single", "multi")
# The Debian packages photos may come from, by name; each is pinned (version, sha256) in debian_packages.
DEBIAN_PACKAGES = {package.name: package for package in (
    debian_packages.OPENCV_DOC, debian_packages.PALAPELI_DATA, debian_packages.TUXPAINT_DATA,
    debian_packages.MATE_BACKGROUNDS, debian_packages.PLASMA_WALLPAPERS, debian_packages.GIMP_HELP_EN,
    debian_packages.LIBVIPS_DOC, debian_packages.SCRIBUS_TEMPLATE, debian_packages.HUGIN_DATA)}


class AnnotationError(ValueError):
    """An annotation file that cannot be used, or a photo that cannot be found (named in the message)."""


@dataclass(frozen=True)
class Annotation:
    name: str
    registry: str
    package: str
    folder: str
    file: str
    class_id: int
    class_name: str
    covers: str
    scene: str
    split: str
    polygons: tuple[tuple[tuple[float, float], ...], ...]

    @property
    def photo(self) -> Path:
        """The photo on this machine (a Debian package is fetched and unpacked on first use)."""
        return photo_path(self)

    @property
    def image_name(self) -> str:
        """The materialised photo's file name: the annotation's name, unique across the set (two packages may
        both ship an `orange.jpg`), with the photo's own suffix."""
        return self.name + Path(self.file).suffix


def _package_root(annotation: Annotation) -> Path:
    """Where the annotation's package keeps its files on this machine."""
    if annotation.registry == DEBIAN:
        package = DEBIAN_PACKAGES.get(annotation.package)
        if package is None:
            raise AnnotationError(f"{annotation.name}: Debian package {annotation.package} is not pinned in "
                                  f"benchmarks/debian_packages.py (pinned: {', '.join(sorted(DEBIAN_PACKAGES))})")
        try:
            return debian_packages.unpacked(package)
        except debian_packages.DebianPackageError as error:
            raise AnnotationError(f"{annotation.name}: {error}") from None
    try:
        return sample_path(annotation.package, "", "")
    except (ModuleNotFoundError, TypeError):
        raise AnnotationError(f"{annotation.name}: Python package {annotation.package} is not installed") from None


def photo_path(annotation: Annotation) -> Path:
    path = _package_root(annotation) / annotation.folder / annotation.file
    if not path.is_file():
        raise AnnotationError(f"{annotation.name}: {annotation.folder}/{annotation.file} is not in "
                              f"{annotation.registry} package {annotation.package}")
    return path


def _choice(value: str, allowed: tuple[str, ...], key: str, path: Path) -> str:
    if value not in allowed:
        raise AnnotationError(f"{path}: {key} is {value!r}, not one of {', '.join(allowed)}")
    return value


def _parse(path: Path) -> Annotation:
    try:
        raw = yaml.safe_load(path.read_text())
        source = raw["source"]
        polygons = tuple(tuple((float(x), float(y)) for x, y in polygon) for polygon in raw["polygons"])
        annotation = Annotation(path.stem, str(source.get("registry", PYTHON)), str(source["package"]),
                                str(source["folder"]), str(source["file"]), int(raw["class_id"]),
                                str(raw["class_name"]), str(raw["covers"]), str(raw["scene"]), str(raw["split"]),
                                polygons)
    except (AttributeError, KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise AnnotationError(f"{path}: not a valid annotation ({type(error).__name__}: {error})") from None
    _choice(annotation.registry, (PYTHON, DEBIAN), "source.registry", path)
    _choice(annotation.scene, SCENES, "scene", path)
    _choice(annotation.split, SPLITS, "split", path)
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


def select(annotations: list[Annotation], split: str = "all") -> list[Annotation]:
    """The annotations of one half (`tune` or `report`), or all of them."""
    if split == "all":
        return list(annotations)
    _choice(split, SPLITS, "split", Path("--split"))
    return [a for a in annotations if a.split == split]


def counts(annotations: list[Annotation]) -> dict[str, int]:
    """What the set's size is judged by: photos, distinct classes, multi-object scenes, source packages."""
    return {"photos": len(annotations), "classes": len({a.class_id for a in annotations}),
            "multi": sum(a.scene == "multi" for a in annotations),
            "packages": len({(a.registry, a.package) for a in annotations})}


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_whole(target: Path, write: Callable[[Path], None]) -> None:
    """Write `target` through a temporary file beside it, renamed into place: it appears whole or not at all."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def materialize(dest: str | Path, annotations: list[Annotation] | None = None, split: str = "all") -> Path:
    """Write `dest/images/<name><suffix>`, `dest/masks/<name>.png` (0/1) and `dest/file_list.txt` (`path class_id`)
    for one half (`tune`, `report`) or all of the set. Every file is written whole or not at all."""
    dest = Path(dest)
    chosen = select(annotations if annotations is not None else load_annotations(), split)
    (dest / IMAGES).mkdir(parents=True, exist_ok=True)
    (dest / MASKS).mkdir(parents=True, exist_ok=True)
    lines = []
    for annotation in chosen:
        mask = Image.fromarray(render_mask(annotation))
        _write_whole(dest / IMAGES / annotation.image_name, lambda t, a=annotation: shutil.copyfile(a.photo, t))
        _write_whole(dest / MASKS / f"{annotation.name}.png", lambda t, m=mask: m.save(t, format="PNG"))
        lines.append(f"{IMAGES}/{annotation.image_name} {annotation.class_id}")
    _write_whole(dest / FILE_LIST, lambda t: t.write_text("\n".join(lines) + "\n"))
    return dest


def overlay(annotation: Annotation, width: int = 320) -> Image.Image:
    """The photo with its mask tinted and its outline drawn, fitted into a `width` x `width` square (a tall photo
    does not stretch its row of a contact sheet)."""
    with Image.open(annotation.photo) as photo:
        rgb = photo.convert("RGB")
    mask = render_mask(annotation).astype(bool)
    tinted = np.asarray(rgb, np.float32).copy()
    tinted[mask] = 0.55 * tinted[mask] + 0.45 * np.array([255, 40, 40])
    picture = Image.fromarray(tinted.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for polygon in annotation.polygons:
        draw.line(list(polygon) + [polygon[0]], fill=(255, 255, 0), width=max(1, rgb.width // 200))
    scale = width / max(picture.width, picture.height)
    return picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))), Image.LANCZOS)


def _caption(annotation: Annotation) -> str:
    kind = " [multi]" if annotation.scene == "multi" else ""
    return f"{annotation.name}: {annotation.class_name.split(',')[0]} ({annotation.class_id}){kind}"


def contact_sheet(annotations: list[Annotation], path: str | Path, columns: int = 4, width: int = 320) -> Path:
    """Every annotation's overlay on one sheet, captioned with its name, class and [multi] for a scene."""
    tiles = [overlay(a, width) for a in annotations]
    rows = [tiles[start:start + columns] for start in range(0, len(tiles), columns)]
    tops = np.cumsum([0] + [max(t.height for t in row) + 16 for row in rows])
    sheet = Image.new("RGB", (columns * width, int(tops[-1])), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (tile, annotation) in enumerate(zip(tiles, annotations)):
        x, y = (i % columns) * width, int(tops[i // columns])
        sheet.paste(tile, (x, y + 16))
        draw.text((x + 3, y + 2), _caption(annotation), fill=(0, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_whole(path, lambda t: sheet.save(t, format="PNG"))
    return path


def grid(path: str | Path, annotation: Annotation | None = None, photo: str | Path | None = None,
         polygons: bool = False, **view) -> Path:
    """A photo (an annotation's, or any file) under a labelled coordinate grid, optionally with the annotation's
    polygons and numbered vertices: what the masks are drawn and corrected on."""
    with Image.open(annotation.photo if annotation else photo) as picture:
        shown = grid_view(picture, polygons=annotation.polygons if annotation and polygons else (), **view)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_whole(path, lambda t: shown.save(t, format="PNG"))
    return path


def summary(annotations: list[Annotation]) -> str:
    """One line per half and one for the whole set: the counts the set is judged by."""
    lines = []
    for split in (*SPLITS, "all"):
        c = counts(select(annotations, split))
        lines.append(f"{split:6s} {c['photos']:3d} photos, {c['classes']:3d} classes, {c['multi']:3d} multi-object, "
                     f"{c['packages']:2d} packages")
    return "\n".join(lines)


def _named(annotations: list[Annotation], name: str) -> Annotation:
    for annotation in annotations:
        if annotation.name == name:
            return annotation
    raise AnnotationError(f"no annotation named {name}")


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_photos.devset", description=__doc__.split("\n")[0])
    parser.add_argument("--annotations", default=str(ANNOTATIONS), help="folder of annotation files (default: the set)")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("materialize", help="write images, 0/1 masks and a file list")
    make.add_argument("dest")
    make.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    sheet = commands.add_parser("overlays", help="a contact sheet of every mask over its photo")
    sheet.add_argument("path")
    sheet.add_argument("--only", nargs="*", help="annotation names (default: all)")
    sheet.add_argument("--split", choices=(*SPLITS, "all"), default="all")
    sheet.add_argument("--columns", type=int, default=4)
    sheet.add_argument("--width", type=int, default=320, help="each overlay fits a square this wide")
    view = commands.add_parser("grid", help="a photo under a coordinate grid, to draw or correct polygons on")
    view.add_argument("path")
    source = view.add_mutually_exclusive_group(required=True)
    source.add_argument("--name", help="an annotation's photo")
    source.add_argument("--photo", help="any photo file (one not annotated yet)")
    view.add_argument("--box", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="enlarge this part")
    view.add_argument("--step", type=int, default=50, help="grid spacing in photo pixels")
    view.add_argument("--zoom", type=float, help="view pixels per photo pixel (default: about 1000 px wide)")
    view.add_argument("--polygons", action="store_true", help="draw the annotation's polygons, vertices numbered")
    commands.add_parser("summary", help="photos, classes and multi-object scenes per half")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    try:
        annotations = load_annotations(args.annotations)
        if args.command == "materialize":
            print(materialize(args.dest, annotations, args.split))
        elif args.command == "overlays":
            chosen = [a for a in select(annotations, args.split) if not args.only or a.name in args.only]
            if not chosen:
                raise AnnotationError(f"no annotation matches {' '.join(args.only or [])} in split {args.split}")
            print(contact_sheet(chosen, args.path, columns=min(args.columns, len(chosen)), width=args.width))
        elif args.command == "grid":
            annotation = _named(annotations, args.name) if args.name else None
            print(grid(args.path, annotation, args.photo, args.polygons, step=args.step, box=args.box, zoom=args.zoom))
        else:
            print(summary(annotations))
    except AnnotationError as error:
        print(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
