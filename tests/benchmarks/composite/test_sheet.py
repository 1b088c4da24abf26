"""The contact sheet: every kind shown, the mask's outline drawn inside the mask."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.composite.build import build_split
from benchmarks.composite.sheet import TILE, contact_sheet, outline, pick
from benchmarks.composite.splits import KINDS
from benchmarks.composite.tables import CompositeError


def test_outline_is_the_mask_border_inside_the_mask():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 3:9] = 1
    edge = outline(mask, width=1)
    assert edge.sum() == 2 * 6 + 2 * 4 and not edge[mask == 0].any() and not edge[4:6, 5:7].any()


def test_pick_shows_every_kind():
    records = [{"kind": kind, "index": i} for i in range(9) for kind in KINDS]
    assert {r["kind"] for r in pick(records, 10)} == set(KINDS) and len(pick(records, 10)) == 10


def test_the_sheet_of_a_built_split(tiny_world, tmp_path):
    build_split(tmp_path / "w", "tuning", 0, tiny_world.stamps(), tiny_world.photos(), tiny_world.stamp_folder,
                tiny_world.folder_of)
    out = contact_sheet(tmp_path / "w", "tuning", tmp_path / "sheet.png", count=10, columns=5)
    with Image.open(out) as sheet:
        assert sheet.size[0] == 5 * TILE and sheet.size[1] > 2 * TILE
    with pytest.raises(CompositeError, match="not a built split"):
        contact_sheet(tmp_path / "w", "heldout", tmp_path / "other.png")
