"""Surface patterns painted in an object's own frame, so they rotate and scale with the object.

Each texture maps unit-frame coordinates (u, v) and a base colour to an RGB image in [0, 1].
Periods are in unit-frame lengths, so a pattern has the same number of repeats at any object size.
"""
from __future__ import annotations

import numpy as np

DARK = 0.5  # the second tone of two-tone patterns, as a fraction of the base colour


def _tone(colour: np.ndarray, on: np.ndarray) -> np.ndarray:
    return np.where(on[..., None], colour, colour * DARK)


def solid(u: np.ndarray, v: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The base colour with a soft light-to-shade ramp across the object."""
    return colour * (1.0 - 0.12 * np.clip(v + 1, 0, 2))[..., None]


def stripes(u: np.ndarray, v: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    period, phase = rng.uniform(0.3, 0.5), rng.uniform(0, 2 * np.pi)
    return _tone(colour, np.sin(2 * np.pi * u / period + phase) > 0)


def checker(u: np.ndarray, v: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    period = rng.uniform(0.35, 0.55)
    return _tone(colour, (np.floor(u / period) + np.floor(v / period)) % 2 == 0)


def dots(u: np.ndarray, v: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    period = rng.uniform(0.35, 0.5)
    du, dv = (u / period) % 1 - 0.5, (v / period) % 1 - 0.5
    return _tone(colour, du ** 2 + dv ** 2 > 0.3 ** 2)


def radial(u: np.ndarray, v: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bright centre fading to a dark rim, like a lit dome."""
    rho = np.sqrt(u ** 2 + v ** 2)
    return colour * np.clip(1.1 - 0.6 * rho, 0.3, 1.0)[..., None]


TEXTURES = {"solid": solid, "stripes": stripes, "checker": checker, "dots": dots, "radial": radial}
