"""Write a split to disk: images, 0/1 masks, the file list the pipeline reads, and scenes.json.

    DEST/<split>/images/<stem>.jpg     the scene (JPEG, as ImageNet's photos are)
    DEST/<split>/masks/<stem>.png      uint8 0/1 at the image's size (label-quality --gt-encoding binary01)
    DEST/<split>/file_list.txt         `images/<stem>.jpg <class_id>` lines (data.source=filelist)
    DEST/<split>/scenes.json           per image: kind, target class, background window, objects (stamp,
                                       box, depth, look, visible share)

Every file is written to a temporary name beside it and renamed, so it is whole or absent; the lists are
written after the images. Every scene is made again on a re-run: it is deterministic, so a run after an
interrupted one leaves the same bytes as one uninterrupted run.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable

from PIL import Image
from tqdm import tqdm

from benchmarks.composite.backgrounds import Background, load_backgrounds, load_photo, source_folder
from benchmarks.composite.catalogue import Stamp, load_catalogue, load_cutout, stamps_folder
from benchmarks.composite.scenes import make_scene
from benchmarks.composite.splits import KINDS, SINGLE, pool, scene_specs

IMAGES, MASKS, FILE_LIST, SCENES = "images", "masks", "file_list.txt", "scenes.json"
JPEG_QUALITY = 92


def write_whole(path: Path, write: Callable[[io.BufferedWriter], object]) -> Path:
    """Run `write(file)` into a temporary file beside `path`, then rename it to `path`; on any failure the
    temporary file is removed and `path` keeps what it held."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as file:
            write(file)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def _text(text: str) -> Callable[[io.BufferedWriter], object]:
    return lambda file: file.write(text.encode())


def summary(records: list[dict]) -> dict:
    """Counts a reader checks the split by: images, classes, stamps, backgrounds, kinds."""
    kinds = {kind: sum(r["kind"] == kind for r in records) for kind in KINDS}
    return {"images": len(records), "classes": len({r["class_id"] for r in records}),
            "stamps": len({o["stamp"] for r in records for o in r["objects"]}),
            "backgrounds": len({r["background"]["name"] for r in records}), "kinds": kinds,
            "multi_object_share": round(1 - kinds[SINGLE] / max(len(records), 1), 4)}


def build_split(dest: str | Path, split: str, seed: int, stamps: list[Stamp], backgrounds: list[Background],
                stamp_folder: Path, photo_folder: Callable[[str], Path] = source_folder) -> dict:
    """Write one split under dest/<split>; return its summary. `photo_folder(source)` is where a
    background's source is unpacked."""
    split_pool = pool(stamps, backgrounds, split)
    specs = scene_specs(split_pool, seed)
    root = Path(dest) / split
    for folder in (IMAGES, MASKS):
        (root / folder).mkdir(parents=True, exist_ok=True)
    cutouts: dict[str, object] = {}
    photos: dict[str, object] = {}
    by_name = {b.name: b for b in split_pool.backgrounds}

    def cutout(path: str):
        if path not in cutouts:
            cutouts[path] = load_cutout(stamp_folder, path)
        return cutouts[path]

    def photo(name: str):
        if name not in photos:
            photos[name] = load_photo(by_name[name], photo_folder(by_name[name].source))
        return photos[name]

    records, lines = [], []
    with tqdm(total=len(specs), desc=f"composite {split}", unit="image") as progress:  # closed on error too
        for spec in specs:
            scene = make_scene(spec, seed, split_pool.distractors_for(spec.class_id), cutout, photo)
            image_file, mask_file = f"{IMAGES}/{spec.stem}.jpg", f"{MASKS}/{spec.stem}.png"
            write_whole(root / image_file,
                        lambda f: Image.fromarray(scene.image).save(f, "JPEG", quality=JPEG_QUALITY))
            write_whole(root / mask_file, lambda f: Image.fromarray(scene.mask).save(f, "PNG"))
            records.append({"image": image_file, "mask": mask_file, **scene.record})
            lines.append(f"{image_file} {spec.class_id}")
            progress.update()
    counts = summary(records)
    write_whole(root / FILE_LIST, _text("\n".join(lines) + "\n"))
    document = {"split": split, "seed": seed, "summary": counts, "images": records}
    write_whole(root / SCENES, _text(json.dumps(document, indent=1) + "\n"))
    return counts


def build(dest: str | Path, splits: list[str], seed: int = 0) -> dict[str, dict]:
    """Build the chosen splits from the committed tables and the Debian packages they name."""
    stamps, backgrounds = load_catalogue(), load_backgrounds()
    folder = stamps_folder()
    return {split: build_split(dest, split, seed, stamps, backgrounds, folder) for split in splits}
