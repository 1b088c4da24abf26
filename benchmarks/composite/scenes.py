"""One scene from its spec and a seed: image size, background window, the instances, their looks and places.

Every random draw of a scene comes from its own generator seeded by (seed, split, index), so a scene does
not depend on which others are made or in what order, and the same seed makes the same bytes. Sizes are
the longest side of a cut-out as a share of the image's shorter side: single objects range from small to
filling the frame; objects in company are smaller so that two fit side by side or three or four scatter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from benchmarks.composite import layout
from benchmarks.composite.catalogue import Stamp
from benchmarks.composite.compose import VISIBLE, Layer, composite, visible_mask
from benchmarks.composite.cutouts import Look, fitting_scale, opaque, prepare
from benchmarks.composite.splits import BEHIND, BESIDE, IN_FRONT, SEVERAL, SINGLE, SceneSpec
from benchmarks.composite.tables import SPLITS

LONG_SIDE = (384, 512)  # image sides: the longer drawn here, the shorter 66-100% of it but at least 320
MIN_SHORT_SIDE = 320
WINDOW = (0.6, 1.0)  # a background window's side as a share of the largest window the crop holds
SIZE = {SINGLE: (0.35, 1.0), BESIDE: (0.3, 0.48), BEHIND: (0.4, 0.75), IN_FRONT: (0.4, 0.75),
        SEVERAL: (0.22, 0.42)}
BRIGHTNESS, CONTRAST = (0.7, 1.3), (0.75, 1.25)
OCCLUDED = (0.2, 0.6)  # share of the target's pixels an occluder in front hides ("behind")
HIDES = (0.2, 0.7)  # share of the other object's pixels the target hides ("in front")
SEVERAL_OVERLAP = 0.15  # the most that instances (and a distractor) of a "several" scene cover of each other
DIGITS = 4


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # uint8 RGB [H, W, 3]
    mask: np.ndarray  # uint8 [H, W]: 1 where the target's instances are visible
    record: dict  # what scenes.json says about it (without file names)


@dataclass(frozen=True)
class Instance:
    stamp: Stamp
    target: bool
    rgba: np.ndarray
    look: Look


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    long = int(rng.integers(LONG_SIDE[0], LONG_SIDE[1] + 1))
    short = max(MIN_SHORT_SIDE, round(long * rng.uniform(0.66, 1.0)))
    return (long, short) if rng.random() < 0.7 else (short, long)


def background_window(rng: np.random.Generator, photo: np.ndarray, canvas: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """The canvas-sized background: a random window of the photo with the canvas's aspect, maybe mirrored."""
    height, width = photo.shape[:2]
    aspect = canvas[0] / canvas[1]
    largest = (width, width / aspect) if width / height < aspect else (height * aspect, height)
    share = rng.uniform(*WINDOW)
    w, h = max(1, round(largest[0] * share)), max(1, round(largest[1] * share))
    x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    flip = bool(rng.random() < 0.5)
    window = Image.fromarray(photo).crop((x, y, x + w, y + h)).resize(canvas, Image.LANCZOS)
    if flip:
        window = window.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    where = [round(v, DIGITS) for v in (x / width, y / height, (x + w) / width, (y + h) / height)]
    return np.asarray(window), {"window": where, "flip": flip}


def _instance(rng: np.random.Generator, stamp: Stamp, target: bool, size: tuple[float, float],
              canvas: tuple[int, int], cutout: Callable[[str], np.ndarray]) -> Instance:
    raw = cutout(stamp.path)
    scale = fitting_scale(raw.shape[:2], rng.uniform(*size) * min(canvas), canvas)
    look = Look(scale, bool(rng.random() < 0.5), float(rng.uniform(*BRIGHTNESS)), float(rng.uniform(*CONTRAST)))
    return Instance(stamp, target, prepare(raw, look), look)


def _cast(rng: np.random.Generator, spec: SceneSpec, distractors: tuple[Stamp, ...], canvas: tuple[int, int],
          cutout: Callable[[str], np.ndarray]) -> list[Instance]:
    """The scene's instances: targets first, then any distractor."""
    size = SIZE[spec.kind]
    if spec.kind == SEVERAL:
        count = int(rng.integers(2, 5))
        cast = [_instance(rng, spec.target_stamps[k % len(spec.target_stamps)], True, size, canvas, cutout)
                for k in range(count)]
        with_distractor = rng.random() < 0.5
    else:
        cast = [_instance(rng, spec.target_stamps[0], True, size, canvas, cutout)]
        with_distractor = spec.kind != SINGLE
    if with_distractor:
        other = distractors[int(rng.integers(0, len(distractors)))]
        cast.append(_instance(rng, other, False, size, canvas, cutout))
    return cast


def _arrange(rng: np.random.Generator, kind: str, cast: list[Instance],
             canvas: tuple[int, int]) -> list[tuple[Instance, tuple[int, int]]]:
    """The instances with their corners, from back to front."""
    masks = [opaque(instance.rgba) for instance in cast]
    if kind == SINGLE:
        return [(cast[0], layout.random_xy(rng, canvas, masks[0].shape))]
    if kind == BESIDE:
        first, second = layout.side_by_side(rng, canvas, masks[0].shape, masks[1].shape)
        placed = [(cast[0], first), (cast[1], second)]
        return placed if rng.random() < 0.5 else placed[::-1]
    if kind in (BEHIND, IN_FRONT):
        back, front = (0, 1) if kind == BEHIND else (1, 0)
        low, high = OCCLUDED if kind == BEHIND else HIDES
        back_xy = layout.random_xy(rng, canvas, masks[back].shape)
        front_xy = layout.occluding_xy(rng, canvas, masks[back], back_xy, masks[front], low, high)
        return [(cast[back], back_xy), (cast[front], front_xy)]
    placed: list[tuple[np.ndarray, tuple[int, int]]] = []
    for mask in masks:
        placed.append((mask, layout.scattered_xy(rng, canvas, mask, placed, SEVERAL_OVERLAP)))
    order = rng.permutation(len(cast))
    return [(cast[k], placed[k][1]) for k in order]


def _object_record(instance: Instance, layer: Layer, depth: int, coverage: np.ndarray) -> dict:
    opaque_pixels = int(opaque(instance.rgba).sum())
    visible = int((coverage >= VISIBLE).sum())
    return {"stamp": instance.stamp.path, "class_id": instance.stamp.class_id, "class_name": instance.stamp.class_name,
            "role": "target" if instance.target else "distractor", "box": list(layer.box), "depth": depth,
            "scale": round(instance.look.scale, DIGITS), "flip": instance.look.flip,
            "brightness": round(instance.look.brightness, DIGITS), "contrast": round(instance.look.contrast, DIGITS),
            "visible": round(visible / max(opaque_pixels, 1), DIGITS)}


def make_scene(spec: SceneSpec, seed: int, distractors: tuple[Stamp, ...], cutout: Callable[[str], np.ndarray],
               photo: Callable[[str], np.ndarray]) -> Scene:
    """The scene `spec` describes; `cutout(stamp path)` and `photo(background name)` give the raw pixels."""
    rng = np.random.default_rng([seed, SPLITS.index(spec.split), spec.index])
    canvas = image_size(rng)
    background, where = background_window(rng, photo(spec.background.name), canvas)
    arranged = _arrange(rng, spec.kind, _cast(rng, spec, distractors, canvas, cutout), canvas)
    layers = [Layer(instance.rgba, x, y) for instance, (x, y) in arranged]
    image, coverages = composite(background, layers)
    mask = visible_mask(coverages, [k for k, (instance, _) in enumerate(arranged) if instance.target])
    if not mask.any():
        raise ValueError(f"scene {spec.stem}: the target is not visible")  # the sizes and overlaps rule it out
    record = {"split": spec.split, "index": spec.index, "kind": spec.kind, "class_id": spec.class_id,
              "class_name": spec.class_name, "size": list(canvas),
              "background": {"name": spec.background.name, **where},
              "objects": [_object_record(instance, layer, depth, coverage)
                          for depth, ((instance, _), layer, coverage) in enumerate(zip(arranged, layers, coverages))],
              "target_pixels": int(mask.sum()), "target_share": round(float(mask.mean()), DIGITS)}
    return Scene(image, mask, record)
