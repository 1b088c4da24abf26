"""A pasted instance: resized, mirrored and jittered in colour, while its alpha stays the stamp's own."""
from __future__ import annotations

import numpy as np

from benchmarks.composite.cutouts import MAX_UPSCALE, Look, fitting_scale, opaque, prepare
from tests.benchmarks.composite.conftest import disc_cutout


def test_jitter_changes_colours_never_alpha():
    rgba = disc_cutout(np.random.default_rng(0), 50, (120, 80, 60))
    plain = prepare(rgba, Look(1.0, False, 1.0, 1.0))
    assert np.array_equal(plain, rgba)
    jittered = prepare(rgba, Look(1.0, False, 1.25, 0.8))
    assert np.array_equal(jittered[..., 3], rgba[..., 3])
    assert jittered[..., :3].astype(int).sum() > plain[..., :3].astype(int).sum()


def test_flip_mirrors_and_scale_resizes():
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :5] = 255  # opaque white on the left
    flipped = prepare(rgba, Look(1.0, True, 1.0, 1.0))
    assert opaque(flipped)[:, 15:].all() and not opaque(flipped)[:, :15].any()
    assert prepare(rgba, Look(1.5, False, 1.0, 1.0)).shape == (15, 30, 4)


def test_fitting_scale_caps_enlargement_and_keeps_the_cut_out_inside():
    assert fitting_scale((100, 50), longest=150, canvas=(400, 400)) == 1.5
    assert fitting_scale((100, 50), longest=400, canvas=(400, 400)) == MAX_UPSCALE
    assert fitting_scale((50, 300), longest=400, canvas=(400, 320)) == 0.98 * 400 / 300
