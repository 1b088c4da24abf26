"""PaddleSeg's own PSSLDataset reads an export: runs in the parity venv, never the project's.

    python tests/parity/paddle_reader_side.py IMAGENET_ROOT PSSL_ROOT OUT.npz

Writes, per train.txt line in order, the label PaddleSeg yields (`label_<i>`, int64 [H, W]: the
class id, 1000 background) and the shape of the image it read (`image_shape_<i>`).
"""
from __future__ import annotations

import sys

import numpy as np
from paddleseg.datasets import PSSLDataset


def main(imagenet_root: str, pssl_root: str, out: str) -> int:
    dataset = PSSLDataset(transforms=[], imagenet_root=imagenet_root, pssl_root=pssl_root)
    arrays = {}
    for index in range(len(dataset)):
        data = dataset[index]
        arrays[f"label_{index}"] = np.asarray(data["label"])
        arrays[f"image_shape_{index}"] = np.asarray(data["img"].shape)
    np.savez(out, **arrays)
    print(f"PSSLDataset read {len(dataset)} samples from {pssl_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
