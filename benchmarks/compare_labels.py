"""Are two stores' labels the same? `python -m benchmarks.compare_labels A.zarr B.zarr` compares
pssl/mask and pssl/weight exactly; exit 1 when they differ (a refactor must change no label). The label
arrays are the same in every store format, so a store made by older code is read as it is."""
from __future__ import annotations

import argparse
import sys

import numpy as np
import zarr

from core.store import MASK, WEIGHT


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs=2)
    args = parser.parse_args(argv)
    first, second = (zarr.open_group(str(path), mode="r", use_consolidated=False) for path in args.stores)
    same = True
    for name in (MASK, WEIGHT):
        a, b = first[name][:], second[name][:]
        equal = a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        same &= equal
        print(f"{name} {a.shape} {a.dtype}: " + ("identical" if equal else f"{int((a != b).sum())} values differ"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
