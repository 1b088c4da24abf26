"""An image's row of the index as a person reads it: path, class and target by name, status or error, and
each model's top-1 and target probability. inspect --image prints it; the gallery's image page shows it."""
from __future__ import annotations

import numpy as np
import zarr

from core.imagenet_classes import class_title
from core.store import (CLASS_SOURCES, INDEX_CLASS_ID, INDEX_CLASS_SOURCE, INDEX_ERROR, INDEX_HEIGHT, INDEX_PATH,
                        INDEX_STATUS, INDEX_TARGET, INDEX_WIDTH, STATUS_BAD, STATUS_OK, class_names, score_name,
                        store_models, top1_name)

STATUS_WORDS = {STATUS_OK: "ok", STATUS_BAD: "bad"}


def _column(group: zarr.Group, name: str, rows: slice, fill) -> np.ndarray:
    count = len(range(group[INDEX_PATH].shape[0])[rows])
    return np.asarray(group[name][rows]) if name in group else np.full(count, fill)


def index_rows(group: zarr.Group, rows: slice) -> list[dict]:
    """One dict per image of `rows` (a slice of the store's images)."""
    classes = class_names(group)
    columns = {name: _column(group, name, rows, fill) for name, fill in
               ((INDEX_PATH, ""), (INDEX_CLASS_ID, -1), (INDEX_CLASS_SOURCE, 0), (INDEX_TARGET, -1),
                (INDEX_STATUS, 0), (INDEX_ERROR, ""), (INDEX_HEIGHT, 0), (INDEX_WIDTH, 0))}
    models = {model: (_column(group, top1_name(model), rows, -1), _column(group, score_name(model), rows, np.nan))
              for model in store_models(group)}
    out = []
    for i, start in enumerate(range(*rows.indices(group[INDEX_PATH].shape[0]))):
        class_id, target = int(columns[INDEX_CLASS_ID][i]), int(columns[INDEX_TARGET][i])
        status = int(columns[INDEX_STATUS][i])
        out.append({
            "index": start,
            "path": str(columns[INDEX_PATH][i]),
            "class_id": class_id,
            "class": class_title(classes, class_id),
            "class_source": CLASS_SOURCES.get(int(columns[INDEX_CLASS_SOURCE][i]), "?"),
            "target": target,
            "target_name": class_title(classes, target),
            "status": STATUS_WORDS.get(status, "pending"),
            "error": str(columns[INDEX_ERROR][i]),
            "size": [int(columns[INDEX_WIDTH][i]), int(columns[INDEX_HEIGHT][i])],
            "models": [{"model": model, "top1": int(top1[i]), "top1_name": class_title(classes, int(top1[i])),
                        "target_prob": None if np.isnan(prob[i]) else round(float(prob[i]), 4)}
                       for model, (top1, prob) in models.items()],
        })
    return out
