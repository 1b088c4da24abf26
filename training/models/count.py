"""Print parameter counts of every network: `python -m training.models.count [classes ...]`."""
from __future__ import annotations

import sys

from training.models import MODELS, count_parameters, create_model


def main(argv: list[str]) -> None:
    class_counts = [int(arg) for arg in argv] or [19, 21, 1001]
    print(f"{'model':<14}{'classes':>8}{'total':>12}{'backbone':>12}{'decoder+heads':>15}")
    for name in MODELS:
        for classes in class_counts:
            model = create_model(name, classes)
            total, backbone = count_parameters(model), count_parameters(model.backbone)
            print(f"{name:<14}{classes:>8}{total:>12,}{backbone:>12,}{total - backbone:>15,}")


if __name__ == "__main__":
    main(sys.argv[1:])
