"""Shape outlines in a unit frame and their rasterisation at a pose.

A shape is a list of (polygon, keep) pieces drawn in order: kept pieces add pixels, the others cut
holes (a ring is a disc minus a smaller disc). Rasterising without anti-aliasing makes every pixel
either the shape's or not, which is what lets the world's masks be exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import polygon as fill_polygon

Piece = tuple[np.ndarray, bool]  # (K x 2 array of (x, y) in the unit frame, True = add / False = cut)


@dataclass(frozen=True)
class Pose:
    """Where a unit-frame shape lands: centre (row, col) and radius in pixels, rotation, stretch."""

    row: float
    col: float
    radius: float
    angle: float  # radians
    aspect: float  # x is stretched by aspect, y by 1 / aspect (area kept)

    def to_pixels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = points[:, 0] * self.aspect, points[:, 1] / self.aspect
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        return self.row + self.radius * (sin * x + cos * y), self.col + self.radius * (cos * x - sin * y)

    def to_unit(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of to_pixels, for textures that follow the object's pose."""
        dy, dx = (rows - self.row) / self.radius, (cols - self.col) / self.radius
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        return (cos * dx + sin * dy) / self.aspect, (-sin * dx + cos * dy) * self.aspect


def rasterize(pieces: list[Piece], pose: Pose, size: int) -> np.ndarray:
    """Boolean [size, size] mask of the pixels the shape covers (clipped to the canvas)."""
    mask = np.zeros((size, size), dtype=bool)
    for points, keep in pieces:
        rows, cols = pose.to_pixels(points)
        rr, cc = fill_polygon(rows, cols, shape=(size, size))
        mask[rr, cc] = keep
    return mask


def circle(radius: float = 1.0, centre: tuple[float, float] = (0.0, 0.0), vertices: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def star_polygon(points: int, outer: float, inner: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False) - np.pi / 2
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


# --- the categories' shapes ------------------------------------------------------------------------

def arrow() -> list[Piece]:
    return [(np.array([(-1, -0.25), (0.15, -0.25), (0.15, -0.65), (1, 0), (0.15, 0.65), (0.15, 0.25),
                       (-1, 0.25)], dtype=float), True)]


def crescent() -> list[Piece]:
    return [(circle(1.0), True), (circle(0.85, centre=(0.45, -0.1)), False)]


def cross() -> list[Piece]:
    a, b = 1.0, 0.32
    return [(np.array([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b),
                       (-a, b), (-a, -b), (-b, -b)], dtype=float), True)]


def gear() -> list[Piece]:
    teeth = 8
    t = np.linspace(0, 2 * np.pi, teeth * 4, endpoint=False)
    r = np.where((np.arange(teeth * 4) // 2) % 2 == 0, 1.0, 0.72)
    return [(np.stack([r * np.cos(t), r * np.sin(t)], axis=1), True), (circle(0.28), False)]


def ring() -> list[Piece]:
    return [(circle(1.0), True), (circle(0.55), False)]


def star() -> list[Piece]:
    return [(star_polygon(5, 1.0, 0.42), True)]


def triangle() -> list[Piece]:
    return [(circle(1.0, vertices=3), True)]


# --- distractors: shapes that belong to no category -------------------------------------------------

def rectangle(rng: np.random.Generator) -> list[Piece]:
    h = rng.uniform(0.3, 0.8)
    return [(np.array([(-1, -h), (1, -h), (1, h), (-1, h)], dtype=float), True)]


def disc(rng: np.random.Generator) -> list[Piece]:
    return [(circle(1.0), True)]


def bar(rng: np.random.Generator) -> list[Piece]:
    h = rng.uniform(0.06, 0.15)
    return [(np.array([(-1, -h), (1, -h), (1, h), (-1, h)], dtype=float), True)]


def zigzag(rng: np.random.Generator) -> list[Piece]:
    """A thick zigzag band: corners but no closed outline like a category's."""
    turns = int(rng.integers(3, 6))
    x = np.linspace(-1, 1, turns + 1)
    y = np.where(np.arange(turns + 1) % 2 == 0, -0.3, 0.3)
    h = 0.12
    top, bottom = np.stack([x, y - h], axis=1), np.stack([x, y + h], axis=1)[::-1]
    return [(np.concatenate([top, bottom]), True)]


def blob(rng: np.random.Generator) -> list[Piece]:
    """A smooth random outline (low-frequency radius), so it never has a star's or gear's spikes."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    r = 1 + sum(rng.uniform(-0.2, 0.2) * np.cos(k * t + rng.uniform(0, 2 * np.pi)) for k in (2, 3))
    return [(np.stack([r * np.cos(t), r * np.sin(t)], axis=1), True)]


DISTRACTOR_SHAPES = (rectangle, disc, bar, zigzag, blob)
