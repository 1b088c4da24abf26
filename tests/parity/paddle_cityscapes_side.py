"""PaddleSeg's Cityscapes dataset and transforms on a generated tree: runs in the parity venv, never the project's.

    python tests/parity/paddle_cityscapes_side.py ROOT OUT.npz

First writes every `*_gtFine_labelTrainIds.png` from its `*_gtFine_labelIds.png` with cityscapesScripts'
own table (id -> trainId, 255 and -1 -> 255), as its createTrainIdLabelImgs does, since PaddleSeg reads
only those. Then records what PaddleSeg yields: the val pipeline (`Normalize` only: `val_image_<i>`,
`val_label_<i>`) and, per case of SCALES, a train pipeline whose randomness is switched off: ResizeStepScaling
with min = max, RandomPaddingCrop larger than the scaled image (padding only: the crop offset can only be 0),
RandomHorizontalFlip with probability 1, Normalize (`train_<case>_image_<i>`, `train_<case>_label_<i>`, the
crop as `crop_<case>` [width, height]). The table itself goes out as `table` (JSON rows name, id, trainId,
colour).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels
from paddleseg.datasets import Cityscapes
from paddleseg.transforms import Normalize, RandomHorizontalFlip, RandomPaddingCrop, ResizeStepScaling
from PIL import Image

SCALES = (1.0, 2.0, 0.5)
PADDING = 8  # pixels the crop exceeds the scaled image by, on each axis


def write_train_ids(root: Path) -> int:
    files = sorted((root / "gtFine").glob("*/*/*_gtFine_labelIds.png"))
    for path in files:
        ids = np.asarray(Image.open(path))
        train_ids = np.full(ids.shape, 255, dtype=np.uint8)
        for label_id in np.unique(ids):
            train_id = id2label[int(label_id)].trainId if int(label_id) in id2label else 255
            train_ids[ids == label_id] = 255 if train_id in (-1, 255) else train_id
        Image.fromarray(train_ids).save(str(path).replace("_labelIds.png", "_labelTrainIds.png"))
    return len(files)


def main(root: str, out: str) -> int:
    root_path = Path(root)
    converted = write_train_ids(root_path)
    arrays = {"table": np.array(json.dumps([(l.name, l.id, l.trainId, list(l.color)) for l in labels]))}
    val = Cityscapes([Normalize()], dataset_root=root, mode="val")
    for index in range(len(val)):
        data = val[index]
        arrays[f"val_image_{index}"], arrays[f"val_label_{index}"] = data["img"], data["label"][0]
    height, width = val[0]["label"].shape[-2:]
    for case, scale in enumerate(SCALES):
        crop = [int(round(width * scale)) + PADDING, int(round(height * scale)) + PADDING]
        transforms = [ResizeStepScaling(scale, scale), RandomPaddingCrop(crop_size=crop),
                      RandomHorizontalFlip(prob=1.0), Normalize()]
        train = Cityscapes(transforms, dataset_root=root, mode="train")
        arrays[f"crop_{case}"] = np.array(crop)
        for index in range(len(train)):
            data = train[index]
            arrays[f"train_{case}_image_{index}"], arrays[f"train_{case}_label_{index}"] = data["img"], data["label"]
    np.savez(out, scales=np.array(SCALES), **arrays)
    print(f"{converted} labelTrainIds written; PaddleSeg read {len(val)} val images and {len(SCALES)} train cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
