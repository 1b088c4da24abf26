"""The field's standard yardstick for seeds: label Pascal VOC 2012 train and score against SegmentationClass.

    make voc-seeds VOC_ROOT=/data/VOCdevkit [ARGS="--class-map conf/voc_to_imagenet.yaml"]

Each train image is labelled by the label pipeline (conf/sample.yaml's models, explainers and fuse:
section unless --config says otherwise). Its target is the ensemble's top-1 ImageNet class, or, with
--class-map, the ImageNet class that the map gives for the image's dominant VOC class. The label's
foreground takes the image's dominant ground-truth class (the image-level label, as CAM-seed
evaluation uses image-level labels); ignore is read as background, as PaddleSeg's reader reads it.
Reported: foreground/background mIoU, the 21-class mIoU and each class's IoU, at the images' own size.
IRN (Ahn et al. 2019) reports about 48 mIoU (21 classes) for the CAM seeds of one ResNet-50 here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from tqdm import tqdm

from core.config import ConfigError, load_config
from core.errors import PsslError, one_line
from core.schema import PipelineConfig
from core.store import FOREGROUND, MASK, labelled_images, open_store
from pipeline import cli
from pipeline.label_quality import GT_IGNORE, decode_ground_truth
from training.voc import NUM_VOC_CLASSES, read_split_ids, resolve_voc_dir

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
IRN_CAM_MIOU = 48.3  # IRN, Table 1: CAM seeds of ResNet-50 on VOC 2012 train


def dominant_class(gt: np.ndarray) -> int:
    values, counts = np.unique(gt[gt > 0], return_counts=True)
    return int(values[counts.argmax()])


def read_class_map(path: str | Path) -> dict[int, int]:
    """{VOC class index: ImageNet class id} from a YAML {voc class name: imagenet id or null}."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    unknown = sorted(set(raw) - set(VOC_CLASSES[1:]))
    if unknown:
        raise ConfigError(f"{path}: {unknown} are not VOC classes ({', '.join(VOC_CLASSES[1:])})")
    return {VOC_CLASSES.index(name): int(value) for name, value in raw.items() if value is not None}


def write_file_list(voc_dir: Path, ids: list[str], class_map: dict[int, int] | None, out: Path) -> Path:
    """`JPEGImages/<id>.jpg [imagenet id]` lines: the mapped class of the image's dominant VOC class, or
    none (the ensemble's top-1) where there is no map or the map has no entry for that class."""
    lines = []
    for image_id in ids:
        line = f"JPEGImages/{image_id}.jpg"
        if class_map:
            cls = dominant_class(decode_ground_truth(voc_dir / "SegmentationClass" / f"{image_id}.png", "voc"))
            line += f" {class_map[cls]}" if cls in class_map else ""
        lines.append(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def score(store: Path, voc_dir: Path, ids: list[str]) -> dict:
    """Confusion of the labels (upsampled to each image's size) against SegmentationClass, 21 classes."""
    group = open_store(store, mode="r")
    labelled = labelled_images(group)
    confusion = np.zeros((NUM_VOC_CLASSES, NUM_VOC_CLASSES), np.int64)
    for i, image_id in enumerate(tqdm(ids, desc="score", unit="img")):
        gt = decode_ground_truth(voc_dir / "SegmentationClass" / f"{image_id}.png", "voc")
        if not labelled[i]:
            continue
        mask = np.asarray(Image.fromarray(np.asarray(group[MASK][i])).resize(gt.shape[::-1], Image.NEAREST))
        prediction = np.where(mask == FOREGROUND, dominant_class(gt), 0)
        valid = gt != GT_IGNORE
        confusion += np.bincount(gt[valid] * NUM_VOC_CLASSES + prediction[valid],
                                 minlength=NUM_VOC_CLASSES ** 2).reshape(NUM_VOC_CLASSES, NUM_VOC_CLASSES)
    iou = np.diag(confusion) / np.maximum(confusion.sum(0) + confusion.sum(1) - np.diag(confusion), 1)
    fg_bg = np.array([[confusion[0, 0], confusion[0, 1:].sum()], [confusion[1:, 0].sum(), confusion[1:, 1:].sum()]])
    fg_bg_iou = np.diag(fg_bg) / np.maximum(fg_bg.sum(0) + fg_bg.sum(1) - np.diag(fg_bg), 1)
    return {"images": int(labelled[:len(ids)].sum()), "miou": float(iou.mean()), "fg_bg_miou": float(fg_bg_iou.mean()),
            "per_class": {name: float(v) for name, v in zip(VOC_CLASSES, iou)}}


def format_result(result: dict) -> str:
    lines = [f"VOC 2012 seeds on {result['images']} images: mIoU (21 classes) {100 * result['miou']:.1f}, "
             f"foreground/background mIoU {100 * result['fg_bg_miou']:.1f} "
             f"(IRN's ResNet-50 CAM seeds: about {IRN_CAM_MIOU:.0f} mIoU)", "", "| class | IoU |", "|---|---|"]
    lines += [f"| {name} | {100 * value:.1f} |" for name, value in result["per_class"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.voc_seeds", description=__doc__.split("\n")[0])
    parser.add_argument("voc_root", help="VOCdevkit, its parent, or VOC2012")
    parser.add_argument("--split", default="train")
    parser.add_argument("--class-map", default=None, help="YAML {voc class: imagenet id}; default: ensemble top-1")
    parser.add_argument("--config", default="conf/sample.yaml", help="models, explainers and fuse settings")
    parser.add_argument("--out", default="results/voc_seeds.md")
    parser.add_argument("overrides", nargs="*", help="key=value settings of the label config")
    args = parser.parse_args(argv)
    try:
        voc_dir = resolve_voc_dir(args.voc_root)
        ids = read_split_ids(voc_dir, args.split)
        run_dir = (Path("runs") / f"voc_seeds_{args.split}").resolve()  # Ray workers run elsewhere
        class_map = read_class_map(args.class_map) if args.class_map else None
        file_list = write_file_list(voc_dir, ids, class_map, run_dir / "file_list.txt")
        config = load_config(args.config, [
            f"run.store={run_dir / 'pssl.zarr'}", "data.source=filelist", f"data.root={voc_dir}",
            f"data.file_list={file_list}", *args.overrides], schema=PipelineConfig, context=cli.config_context)
        store = cli.run_stages(config, cli.STAGE_COMMANDS["generate-labels"])
        result = score(store, voc_dir, ids)
    except (PsslError, OSError) as error:  # training.voc.VOCDataError is a PsslError
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    text = format_result(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(f"# VOC seeds\n\nCommand: `python -m benchmarks.voc_seeds {' '.join(argv or sys.argv[1:])}`"
                              f"\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
