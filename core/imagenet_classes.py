"""The standard ImageNet-1k class order: class id = line number of the WordNet id in imagenet_synsets.txt.

The list is the sorted ILSVRC-2012 synsets, the order torchvision's and timm's classifiers predict in
and PaddleSeg's `imagenet_lsvrc_2015_synsets.txt` lists. It was copied from timm 1.0.31
(`timm/data/_info/imagenet_synsets.txt`), which ships it offline; tests/test_sources.py checks known
positions (n01440764 tench = 0, n02123159 tiger cat = 282). The readable names (imagenet_lemmas.txt,
`wnid<TAB>lemmas`) are timm's `imagenet_synset_to_lemma.txt` restricted to those 1000 synsets: people
judge labels by "binder" and "tripod", not by n02840245.
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


@functools.cache
def _lemmas() -> dict[str, str]:
    lines = (Path(__file__).with_name("imagenet_lemmas.txt")).read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if line)


def readable_name(name: str) -> str:
    """A class as a person reads it: an ImageNet WordNet id becomes its first lemma ("n02840245" -> "binder"),
    any other name (a folder, a known-answer class) is kept."""
    lemmas = _lemmas().get(name)
    return lemmas.split(",", 1)[0].strip() if lemmas else name


def class_title(classes: list[str] | None, class_id: int) -> str:
    """The readable name of class `class_id` of a store's class list; "class 12" where the list does not name it,
    "unknown" for a negative id."""
    if class_id < 0:
        return "unknown"
    if classes and class_id < len(classes):
        return readable_name(str(classes[class_id]))
    return f"class {class_id}"
