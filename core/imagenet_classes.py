"""The standard ImageNet-1k class order: class id = line number of the WordNet id in imagenet_synsets.txt.

The list is the sorted ILSVRC-2012 synsets, the order torchvision's and timm's classifiers predict in
and PaddleSeg's `imagenet_lsvrc_2015_synsets.txt` lists. It was copied from timm 1.0.31
(`timm/data/_info/imagenet_synsets.txt`), which ships it offline; tests/test_sources.py checks known
positions (n01440764 tench = 0, n02123159 tiger cat = 282).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

WNID_PATTERN = re.compile(r"n\d{8}")


@functools.cache
def imagenet_synsets() -> tuple[str, ...]:
    return tuple((Path(__file__).with_name("imagenet_synsets.txt")).read_text().split())


@functools.cache
def _positions() -> dict[str, int]:
    return {wnid: i for i, wnid in enumerate(imagenet_synsets())}


def imagenet_class_id(name: str) -> int | None:
    """The standard id of an ImageNet-1k WordNet id, None for any other name."""
    return _positions().get(name) if WNID_PATTERN.fullmatch(name) else None
