"""Training samples from the released PSSL dataset, in the layout PaddleSeg's PSSLDataset reads.

    pssl_root/train.txt                          lines like train/n01440764/n01440764_10026.JPEG_eiseg.npz
    pssl_root/imagenet_lsvrc_2015_synsets.txt    one WordNet id a line; line number = class id
    pssl_root/train/<wnid>/<name>.JPEG_eiseg.npz mask under 'arr_0' (1 = the image's class)
    imagenet_root/train/<wnid>/<name>.JPEG       the original image

Label files are read by `core.released_format.load_released_label`: as in the reference, 1
becomes the image's class and other values background, except 255, which this project's export
writes for ignore. The release has no confidence map, so every labelled pixel weighs 1 (ignore and
crop padding 0). The class comes from the label's <wnid> folder, as the export writes it.
"""
from __future__ import annotations

from pathlib import Path

from core.released_format import SUFFIX, SYNSETS, TRAIN_LIST, load_released_label
from training.datasets.base import AugmentedSegmentationDataset, DataError, check_files_exist, load_image_tensor
from training.datasets.pssl_store import to_class_label
from training.datasets.transforms import resize_label_weight


def read_synsets(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"class list not found: {path}")
    return {line.strip(): index for index, line in enumerate(path.read_text().splitlines()) if line.strip()}


class PaddleSegPsslDataset(AugmentedSegmentationDataset):
    def __init__(self, pssl_root: str | Path, imagenet_root: str | Path, num_classes: int, ignore_index: int,
                 transforms, seed: int = 0, list_file: str = TRAIN_LIST, synsets_file: str = SYNSETS,
                 check_files: bool = True):
        super().__init__(transforms, seed)
        pssl_root, imagenet_root = Path(pssl_root), Path(imagenet_root)
        self.background, self.ignore_index = int(num_classes) - 1, int(ignore_index)
        listing = pssl_root / list_file
        if not listing.is_file():
            raise DataError(f"PSSL list file not found: {listing}")
        class_ids = read_synsets(pssl_root / synsets_file)
        if len(class_ids) > self.background:
            raise DataError(f"class count mismatch: {synsets_file} lists {len(class_ids)} classes + "
                            f"background but the config says num_classes={num_classes}")
        self.items = []
        for line in listing.read_text().splitlines():
            label_rel = line.strip()
            if not label_rel:
                continue
            if not label_rel.endswith(SUFFIX):
                raise DataError(f"{listing}: {label_rel!r} does not end with {SUFFIX}")
            image_rel = label_rel[: -len(SUFFIX)]
            wnid = Path(label_rel).parent.name
            if wnid not in class_ids:
                raise DataError(f"{listing}: class {wnid!r} of {label_rel} is not in {synsets_file}")
            self.items.append((imagenet_root / image_rel, pssl_root / label_rel, class_ids[wnid]))
        if not self.items:
            raise DataError(f"PSSL list file {listing} is empty")
        self.skipped = {}
        if check_files:
            check_files_exist([item[0] for item in self.items], "image file")
            check_files_exist([item[1] for item in self.items], "PSSL label file")

    def describe_skipped(self) -> str:
        return "none"

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict:
        image_path, label_path, class_id = self.items[index]
        image = load_image_tensor(image_path)
        try:
            mask = load_released_label(label_path)
        except (OSError, ValueError) as error:
            raise DataError(f"PSSL label {label_path}: {error}") from None
        label = to_class_label(mask, class_id, self.background, self.ignore_index)
        weight = (label != self.ignore_index).float()
        label, weight = resize_label_weight(label, weight, *image.shape[-2:])
        return {"image": image, "label": label, "weight": weight, "path": str(image_path)}
