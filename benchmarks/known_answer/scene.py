"""Compose a scene as painted layers, and render it to an image and an exact label map.

A scene is a list of layers painted in order: a textured background, clutter, the object
instances, then occluders. Each layer is a set of pixels and their colours; painting a layer sets
those pixels' colour and label, so the label map is exactly what the image shows: an object pixel
covered by an occluder is the occluder's, not the object's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import line as draw_line
from skimage.transform import resize

from benchmarks.known_answer import shapes
from benchmarks.known_answer.categories import PALETTE, Category
from benchmarks.known_answer.textures import TEXTURES

BACKGROUND_LABEL = 0
PALETTE_DISTRACTORS = 0.7  # share of distractors in the categories' palette colours (the rest muted)


@dataclass
class Layer:
    pixels: np.ndarray  # bool [S, S]
    colours: np.ndarray  # float32 [S, S, 3] in [0, 1]; only the entries at `pixels` are used
    label: int  # 0 for anything that is not an object, else the label its object is painted with


def render(layers: list[Layer]) -> tuple[np.ndarray, np.ndarray]:
    """Paint the layers in order; return float32 RGB [S,S,3] and uint8 labels [S,S]."""
    size = layers[0].pixels.shape[0]
    rgb = np.zeros((size, size, 3), dtype=np.float32)
    labels = np.zeros((size, size), dtype=np.uint8)
    for layer in layers:
        rgb[layer.pixels] = layer.colours[layer.pixels]
        labels[layer.pixels] = layer.label
    return rgb, labels


def finish(rgb: np.ndarray, rng: np.random.Generator, noise_std: float) -> np.ndarray:
    """Add sensor noise and quantise to 8 bits (noise changes colours, never labels)."""
    if noise_std > 0:
        rgb = rgb + rng.normal(0.0, noise_std, rgb.shape).astype(np.float32)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float32)


def _muted(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(0.25, 0.75)
    return (0.45 * rng.uniform(0, 1, 3) + 0.55 * grey).astype(np.float32)


def _jitter(colour: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    return np.clip(colour + rng.normal(0.0, amount, 3), 0.05, 1.0).astype(np.float32)


def textured_layer(pieces: list[shapes.Piece], pose: shapes.Pose, colour: np.ndarray, texture: str,
                   label: int, size: int, rng: np.random.Generator) -> Layer:
    rows, cols = _grid(size)
    u, v = pose.to_unit(rows, cols)
    colours = TEXTURES[texture](u, v, colour, rng).astype(np.float32)
    return Layer(shapes.rasterize(pieces, pose, size), colours, label)


def background_layer(rng: np.random.Generator, size: int, world: dict) -> Layer:
    """A muted two-colour gradient with low-frequency mottling, a faint pattern and thin lines."""
    rows, cols = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * cols + np.sin(angle) * rows) / size
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    first, second = _muted(rng), _muted(rng)
    colours = first * (1 - ramp[..., None]) + second * ramp[..., None]
    cells = int(rng.integers(3, 9))
    mottle = resize(rng.uniform(-1, 1, (cells, cells)), (size, size), order=3, mode="reflect")
    colours = colours + world["background_mottle"] * mottle[..., None]
    pose = shapes.Pose(size / 2, size / 2, size * rng.uniform(0.25, 0.6), rng.uniform(0, np.pi), 1.0)
    u, v = pose.to_unit(rows, cols)
    pattern = TEXTURES[rng.choice(["stripes", "checker", "dots"])](u, v, np.ones(3, np.float32), rng)
    colours = colours * (1 - world["background_pattern"] * (1 - pattern))
    for _ in range(_count(rng, world["background_lines"])):
        r0, c0, r1, c1 = rng.integers(0, size, 4)
        rr, cc = draw_line(r0, c0, r1, c1)
        colours[rr, cc] = _muted(rng)
    return Layer(np.ones((size, size), dtype=bool), np.clip(colours, 0, 1).astype(np.float32), BACKGROUND_LABEL)


def distractor_layer(rng: np.random.Generator, size: int, world: dict,
                     near: shapes.Pose | None = None) -> Layer:
    """A shape of no category, in any palette colour (also the categories') or a muted one."""
    low, high = world["distractor_radius"]
    radius = size * rng.uniform(low, high)
    if near is None:
        row, col = rng.uniform(0, size, 2)
    else:
        row, col = np.array([near.row, near.col]) + rng.uniform(-1, 1, 2) * near.radius
    pose = shapes.Pose(row, col, radius, rng.uniform(0, 2 * np.pi), rng.uniform(*world["aspect"]))
    shape = shapes.DISTRACTOR_SHAPES[rng.integers(len(shapes.DISTRACTOR_SHAPES))]
    if rng.uniform() < PALETTE_DISTRACTORS:
        colour = _jitter(np.array(PALETTE[rng.choice(sorted(PALETTE))], np.float32), rng, world["colour_jitter"])
    else:
        colour = _muted(rng)
    texture = rng.choice(sorted(TEXTURES))
    return textured_layer(shape(rng), pose, colour, texture, BACKGROUND_LABEL, size, rng)


def object_pose(rng: np.random.Generator, size: int, world: dict, instances: int) -> shapes.Pose:
    """Smaller when there are more instances; the centre may sit close enough to the edge to crop it."""
    low, high = world["object_radius"]
    radius = size * rng.uniform(low, high) * instances ** -0.3
    margin = world["edge_margin"] * radius
    row, col = rng.uniform(margin, size - margin, 2)
    return shapes.Pose(row, col, radius, rng.uniform(0, 2 * np.pi), rng.uniform(*world["aspect"]))


def object_layer(rng: np.random.Generator, label: int, category: Category, pose: shapes.Pose,
                 size: int, world: dict) -> Layer:
    colour = _jitter(category.colour(rng.choice(category.colours)), rng, world["colour_jitter"])
    texture = rng.choice(category.textures)
    return textured_layer(category.shape(), pose, colour, texture, label, size, rng)


def _count(rng: np.random.Generator, bounds: list[int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def sample_scene(rng: np.random.Generator, objects: dict[int, Category], size: int, world: dict) -> list[Layer]:
    """Background, clutter, 1..n instances of each category (painted with its label), then occluders
    that leave each label at least `min_visible` of its pixels."""
    layers = [background_layer(rng, size, world)]
    layers += [distractor_layer(rng, size, world) for _ in range(_count(rng, world["clutter"]))]
    poses = []
    for label, category in objects.items():
        instances = _count(rng, world["instances"])
        for _ in range(instances):
            pose = object_pose(rng, size, world, instances)
            layers.append(object_layer(rng, label, category, pose, size, world))
            poses.append(pose)
    painted = _areas(render(layers)[1], objects)
    for _ in range(_count(rng, world["occluders"])):
        for _attempt in range(world["occluder_attempts"]):
            occluder = distractor_layer(rng, size, world, near=poses[rng.integers(len(poses))])
            visible = _areas(render(layers + [occluder])[1], objects)
            if np.all(visible >= world["min_visible"] * painted):
                layers.append(occluder)
                break
    return layers


def _areas(labels: np.ndarray, objects: dict[int, Category]) -> np.ndarray:
    return np.array([(labels == label).sum() for label in objects])
