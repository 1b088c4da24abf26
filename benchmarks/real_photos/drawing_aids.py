"""Aids for drawing the development set's masks by hand: a photo under a labelled coordinate grid.

A person reads polygon vertices off the grid (photo pixel coordinates, x to the right, y down), writes them
into the annotation, and looks again with the polygons drawn over the same grid and their vertices numbered,
so a vertex that misses the object's edge can be found and moved. A box of the photo can be enlarged to
place vertices along a fine edge. Nothing here decides where an object is: the eye does.
"""
from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]
Polygon = Sequence[tuple[float, float]]
MARGIN = 34  # room for the coordinate labels left of and above the picture


def _clip_box(box: Box | None, size: tuple[int, int]) -> Box:
    if box is None:
        return 0, 0, size[0], size[1]
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)


def _auto_zoom(box: Box, target: int) -> float:
    """A zoom that makes the longer side of the box about `target` pixels: big enough to read, small enough to view."""
    return target / max(box[2] - box[0], box[3] - box[1])


def _grid_lines(draw: ImageDraw.ImageDraw, box: Box, zoom: float, step: int, size: tuple[int, int]) -> None:
    """Lines every `step` photo pixels, labelled with their coordinate on the margins; every second one darker."""
    x0, y0, x1, y1 = box
    for value in range(x0 - x0 % step, x1 + 1, step):
        if value < x0:
            continue
        x = MARGIN + (value - x0) * zoom
        colour = (0, 255, 255) if (value // step) % 2 == 0 else (255, 0, 255)
        draw.line([(x, MARGIN), (x, size[1])], fill=colour, width=1)
        draw.text((x - 10, 2 + 12 * ((value // step) % 2)), str(value), fill=(0, 0, 0))
    for value in range(y0 - y0 % step, y1 + 1, step):
        if value < y0:
            continue
        y = MARGIN + (value - y0) * zoom
        colour = (0, 255, 255) if (value // step) % 2 == 0 else (255, 0, 255)
        draw.line([(MARGIN, y), (size[0], y)], fill=colour, width=1)
        draw.text((2, y - 5), str(value), fill=(0, 0, 0))


def _polygons(draw: ImageDraw.ImageDraw, polygons: Sequence[Polygon], box: Box, zoom: float) -> None:
    """Each polygon's outline, its vertices numbered `polygon.vertex` so a wrong one can be named and moved."""
    def to_view(point: tuple[float, float]) -> tuple[float, float]:
        return MARGIN + (point[0] - box[0]) * zoom, MARGIN + (point[1] - box[1]) * zoom

    for p, polygon in enumerate(polygons):
        points = [to_view(point) for point in polygon]
        draw.line(points + points[:1], fill=(255, 255, 0), width=2)
        for v, (x, y) in enumerate(points):
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 0, 0))
            draw.text((x + 3, y + 1), f"{p}.{v}" if len(polygons) > 1 else str(v), fill=(255, 255, 255))


def grid_view(photo: Image.Image, step: int = 50, box: Box | None = None, zoom: float | None = None,
              polygons: Sequence[Polygon] = (), target: int = 1000) -> Image.Image:
    """The photo (or `box` of it, x0 y0 x1 y1) scaled by `zoom` (default: longer side about `target` px), with
    grid lines every `step` photo pixels labelled in photo coordinates, and `polygons` drawn over it."""
    box = _clip_box(box, photo.size)
    zoom = zoom or _auto_zoom(box, target)
    crop = photo.convert("RGB").crop(box)
    crop = crop.resize((max(1, round(crop.width * zoom)), max(1, round(crop.height * zoom))), Image.LANCZOS)
    view = Image.new("RGB", (crop.width + MARGIN, crop.height + MARGIN), (255, 255, 255))
    view.paste(crop, (MARGIN, MARGIN))
    draw = ImageDraw.Draw(view)
    _grid_lines(draw, box, zoom, step, view.size)
    _polygons(draw, polygons, box, zoom)
    return view
