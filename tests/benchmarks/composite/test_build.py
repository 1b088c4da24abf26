"""Building a split: the files the pipeline reads, bit-identical on a second build and after an interrupted one,
and no file ever left half written."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.composite.build import FILE_LIST, SCENES, build_split, write_whole
from benchmarks.composite.tables import SPLITS
from core.errors import run_cli
from pipeline.index.sources import file_list


def build_tiny(world, dest, split="heldout"):
    return build_split(dest, split, 0, world.stamps(), world.photos(), world.stamp_folder, world.folder_of)


def files_of(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_split_is_images_binary_masks_a_file_list_and_scenes(tiny_world, tmp_path):
    counts = build_tiny(tiny_world, tmp_path / "world")
    root = tmp_path / "world" / "heldout"
    paths, labels = file_list(root, root / FILE_LIST)
    scenes = json.loads((root / SCENES).read_text())
    assert len(paths) == counts["images"] == len(scenes["images"]) == 27
    assert counts["classes"] == 3 and counts["backgrounds"] == 2 and counts["kinds"]["single"] == 12
    for path, label, record in zip(paths, labels, scenes["images"]):
        assert path == record["image"] and label == record["class_id"]
        with Image.open(root / path) as image, Image.open(root / record["mask"]) as mask:
            assert image.format == "JPEG" and mask.mode == "L" and mask.size == image.size
            values = np.unique(np.asarray(mask))
        assert set(values.tolist()) == {0, 1}
        assert record["mask"] == "masks/" + path.split("/")[1].rsplit(".", 1)[0] + ".png"


def test_two_builds_are_bit_identical_and_a_rerun_after_an_interruption_too(tiny_world, tmp_path):
    build_tiny(tiny_world, tmp_path / "a")
    build_tiny(tiny_world, tmp_path / "b")
    reference = files_of(tmp_path / "a")
    assert reference == files_of(tmp_path / "b")
    interrupted = tmp_path / "b" / "heldout"
    (interrupted / SCENES).unlink()  # as if stopped before the lists were written ...
    for image in sorted((interrupted / "images").iterdir())[5:]:
        image.unlink()  # ... with only some images done
    (interrupted / "masks" / ".heldout_0009_peacock.png.partial").write_bytes(b"half a png")  # a killed write
    build_tiny(tiny_world, tmp_path / "b")
    assert files_of(tmp_path / "b") == reference


def test_another_seed_makes_another_world(tiny_world, tmp_path):
    build_tiny(tiny_world, tmp_path / "a")
    build_split(tmp_path / "c", "heldout", 1, tiny_world.stamps(), tiny_world.photos(), tiny_world.stamp_folder,
                tiny_world.folder_of)
    assert files_of(tmp_path / "a") != files_of(tmp_path / "c")


def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    path = tmp_path / "scenes.json"
    write_whole(path, lambda file: file.write(b"old"))

    def stopped_half_way(file):
        file.write(b"new and half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_whole(path, stopped_half_way)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["scenes.json"]
    with pytest.raises(KeyboardInterrupt):
        write_whole(tmp_path / "new.json", stopped_half_way)
    assert not (tmp_path / "new.json").exists()


def test_an_unreadable_stamp_is_one_error_line(tiny_world, tmp_path, capsys):
    (tiny_world.stamp_folder / "birds" / "peacock_b.png").write_bytes(b"\x89PNG broken")
    assert run_cli(lambda: build_tiny(tiny_world, tmp_path / "w")) == 1
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress bar, closed on its own line
    assert last.startswith("error: cannot read stamp ") and last.endswith("peacock_b.png: not an image Pillow can read")


def test_both_splits_build_from_one_pair_of_tables(tiny_world, tmp_path):
    stems = {}
    for split in SPLITS:
        build_tiny(tiny_world, tmp_path / "w", split)
        stems[split] = {p.stem for p in (tmp_path / "w" / split / "images").iterdir()}
    assert all(stem.startswith(split) for split in SPLITS for stem in stems[split])
