"""The map encodings and their one reader: bit-identical Grad-CAM grids, unit levels, older stores as they are."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.store import (ENCODING, ENCODING_FULL, ENCODING_UNIT, FORMAT, LEVELS, StoreError, map_encoding, open_store, q99_name,
                        saliency_name, store_explainers, store_models, unit_levels)
from explainers import GradCam, LayerCam
from pipeline.explain.classifiers import load_classifier
from pipeline.fuse.rules import normalise
from pipeline.fuse.kernel import q99_of_maps
from pipeline.maps.stored import StoredMaps, create_map_array, from_unit, grid_to_maps, to_stored_maps, to_unit
from benchmarks.synthetic_store import make_synthetic_store
from tests.helpers.models import TINY_CNN


@pytest.mark.parametrize("method", [GradCam, LayerCam])
def test_grid_decodes_to_the_very_maps_explain_stores(method):
    classifier = load_classifier({"arch": TINY_CNN, "name": "cnn", "seed": 1, "classes": 10, "input_size": 40})
    images = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 4, 9])
    cam = method(layer=classifier.cam_layer)
    whole = to_stored_maps(cam.explain(classifier.net, images, targets), 24)[0]
    grid = cam.explain_grid(classifier.net, images, targets)
    assert grid.shape == (3, 5, 5) and whole.any()
    np.testing.assert_array_equal(grid_to_maps(grid.numpy(), 40, 24), whole)


@pytest.mark.parametrize("levels", [255, 15, 1])
def test_unit_levels_keep_what_fusion_reads(levels):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 16, 16)).astype(np.float16)
    maps[3] = np.where(maps[3] > 2.5, maps[3], 0)  # fewer than 1% positive pixels: q99 is 0
    q99 = q99_of_maps(maps)
    assert q99[3] == 0 and q99[:3].min() > 0
    stored = to_unit(maps, q99, levels)
    assert stored.max() == levels and len(np.unique(stored)) <= levels + 1
    decoded = from_unit(stored, q99, levels)
    np.testing.assert_allclose(normalise(decoded, q99), normalise(maps, q99), atol=0.5 / levels + 1e-3)


@pytest.mark.parametrize("smooth", [False, True])
def test_unit_arrays_record_their_levels_and_read_back_through_their_filter(tmp_path, smooth):
    """Smooth maps go through a delta filter: the array still holds (and reads back) the levels themselves."""
    make_synthetic_store(tmp_path / "s.zarr", 4, map_size=16, shard=2)
    group = open_store(tmp_path / "s.zarr")
    rng = np.random.default_rng(1)
    maps = np.cumsum(rng.random((4, 16, 16)), axis=2).astype(np.float16)  # rising along rows: deltas matter
    q99 = q99_of_maps(maps)
    array = create_map_array(group, "m", "e", 4, ENCODING_UNIT, levels=31, smooth=smooth)
    array[:] = to_unit(maps, q99, unit_levels(array))
    group.create_array(q99_name("m", "e"), data=q99)
    assert array.attrs[LEVELS] == 31 and unit_levels(array) == 31
    assert bool(array.filters) == smooth
    reopened = open_store(tmp_path / "s.zarr", mode="r")
    np.testing.assert_array_equal(reopened[saliency_name("m", "e")][:], to_unit(maps, q99, 31))
    np.testing.assert_array_equal(StoredMaps(reopened, "m", "e")[:], from_unit(to_unit(maps, q99, 31), q99, 31))


def test_a_format_1_store_gets_its_encodings_written_when_upgraded(tmp_path):
    """Format 1 kept whole float16 maps without an encoding attribute, and unit arrays without their levels."""
    make_synthetic_store(tmp_path / "old.zarr", 6, map_size=16, shard=4)
    group = open_store(tmp_path / "old.zarr")
    del group[saliency_name("net_b", "smoothgrad")]
    unit = create_map_array(group, "net_b", "smoothgrad", 6, ENCODING_UNIT)
    del unit.attrs[LEVELS]
    full = group[saliency_name("net_a", "gradcam")]
    del full.attrs[ENCODING]
    del group.attrs[FORMAT]
    group = open_store(tmp_path / "old.zarr")  # opened to write: upgraded
    assert unit_levels(group[saliency_name("net_b", "smoothgrad")]) == 255
    array = group[saliency_name("net_a", "gradcam")]
    assert map_encoding(array) == ENCODING_FULL
    maps = StoredMaps(group, "net_a", "gradcam")
    np.testing.assert_array_equal(maps[:], array[:])
    np.testing.assert_array_equal(maps[1:3, :, 4], array[1:3, :, 4])
    array.attrs[ENCODING] = "jpeg"
    with pytest.raises(StoreError, match="unknown encoding"):
        StoredMaps(group, "net_a", "gradcam")
