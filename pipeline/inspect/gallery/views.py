"""The gallery's sorted views, written as fixed-size pages, so no file grows with the store.

A view is a set of images (all labelled ones, those the classifiers barely see, bad inputs, one class)
sorted by one number (mean weight, foreground share, ignore share, target probability, disagreement
among members, objectness agreement, or position). Each view x key is written in ascending order as
pages of PAGE_SIZE rows (data/view/<view>/<key>/<page>.js); the page script reads a descending page from
the (at most two) ascending pages that hold it, so descending orders cost no files. The driver holds
a few numbers per image (tens of MB at ImageNet size), never a map.
"""
from __future__ import annotations

import numpy as np

from core.imagenet_classes import class_title
from core.store import (INDEX_ERROR, INDEX_PATH, INDEX_STATUS, INDEX_TARGET, STATUS_BAD, STATUS_OK, class_names,
                        n_images)
from core.target_probability import is_low, target_probability
from pipeline.inspect.gallery.shard import STATS
from pipeline.inspect.gallery.site import write_data

PAGE_SIZE = 60
# sort key -> (what the page calls it, where it comes from)
KEYS = {"weight": "mean weight", "fg": "foreground share", "ignore": "ignore share", "prob": "target probability",
        "disagreement": "disagreement", "objectness": "objectness IoU", "index": "image index"}
STAT_OF_KEY = {"fg": "fg_share", "ignore": "ignore_share", "weight": "mean_weight", "disagreement": "disagreement",
               "objectness": "objectness_iou"}
ROW_FIELDS = ("index", "target", "prob", "fg", "ignore", "weight", "disagreement", "objectness", "low", "path")


def _rounded(values: np.ndarray) -> list:
    return [None if np.isnan(v) else round(float(v), 4) for v in values]


class Table:
    """Every image's numbers, gathered from the built shards and the store's index."""

    def __init__(self, group, stats: np.ndarray, built: np.ndarray, threshold: float):
        self.n = n_images(group)
        self.status = np.asarray(group[INDEX_STATUS][:])
        self.target = np.asarray(group[INDEX_TARGET][:]).astype(np.int64)
        self.paths = np.asarray(group[INDEX_PATH][:])
        self.errors = np.asarray(group[INDEX_ERROR][:])
        self.prob = target_probability(group)
        self.low = is_low(self.prob, self.status, threshold)
        self.labelled = built & (self.status == STATUS_OK)
        self.columns = {"index": np.arange(self.n, dtype=np.float64), "prob": self.prob.astype(np.float64)}
        for key, stat in STAT_OF_KEY.items():
            self.columns[key] = stats[:, STATS.index(stat)].astype(np.float64)
        self.classes = class_names(group)

    def row(self, i: int) -> list:
        c = self.columns
        return [int(i), int(self.target[i]), *_rounded(np.array([c["prob"][i], c["fg"][i], c["ignore"][i], c["weight"][i],
                                                                  c["disagreement"][i], c["objectness"][i]])),
                int(self.low[i]), str(self.paths[i])]

    def bad_row(self, i: int) -> list:
        return [*self.row(i), str(self.errors[i])]


def sorted_members(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """`members` ascending by value (a missing value first: an image with nothing decided is the worst), ties by index."""
    keyed = np.where(np.isnan(values[members]), -np.inf, values[members])
    return members[np.lexsort((members, keyed))]


def write_view(out, name: str, members: np.ndarray, table: Table, keys: list[str], bad: bool = False) -> int:
    """Pages of one view for every key; returns its size."""
    for key in keys:
        order = sorted_members(table.columns[key], members)
        for page, start in enumerate(range(0, len(order), PAGE_SIZE)):
            rows = [table.bad_row(int(i)) if bad else table.row(int(i)) for i in order[start:start + PAGE_SIZE]]
            write_data(out, f"view/{name}/{key}/{page}", rows)
    return int(len(members))


def class_summaries(table: Table) -> list[dict]:
    """Per target class: counts and mean numbers (what the class list shows, bounded by the number of classes)."""
    out = []
    for class_id in np.unique(table.target[table.target >= 0]):
        members = table.target == class_id
        labelled = members & table.labelled

        def mean(values, where):
            chosen = values[where]
            chosen = chosen[~np.isnan(chosen)]
            return round(float(chosen.mean()), 4) if len(chosen) else None

        out.append({"id": int(class_id), "name": class_title(table.classes, int(class_id)),
                    "images": int(members.sum()), "ok": int((members & (table.status == STATUS_OK)).sum()),
                    "bad": int((members & (table.status == STATUS_BAD)).sum()), "labelled": int(labelled.sum()),
                    "low": int((members & table.low).sum()), "prob": mean(table.columns["prob"], members),
                    **{key: mean(table.columns[key], labelled) for key in STAT_OF_KEY}})
    return out


def write_views(out, table: Table, keys: list[str]) -> dict[str, int]:
    """Every view's pages, and the class list; returns {view: size} for the views other than classes."""
    labelled = np.flatnonzero(table.labelled)
    sizes = {"all": write_view(out, "all", labelled, table, keys),
             "low": write_view(out, "low", np.flatnonzero(table.labelled & table.low), table, keys),
             "bad": write_view(out, "bad", np.flatnonzero(table.status == STATUS_BAD), table, ["index"], bad=True)}
    by_class = labelled[np.argsort(table.target[labelled], kind="stable")]
    bounds = np.searchsorted(table.target[by_class], np.unique(table.target[by_class]), side="left").tolist() + [len(by_class)]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        write_view(out, f"class{int(table.target[by_class[start]])}", by_class[start:stop], table, keys)
    write_data(out, "classes", class_summaries(table))
    return sizes
