"""PaddleSeg's side of the parity check: runs in the parity venv (paddlepaddle + paddleseg), never the project's.

For each network it builds PaddleSeg's own model, fills every parameter and BatchNorm statistic
with seeded random values (so no term can hide behind PaddleSeg's zero/one initialisation), saves a
real `.pdparams` with `paddle.save`, and records PaddleSeg's outputs in eval mode on a batch at
several input sizes: the main logits, the auxiliary heads and STDC-Seg's detail head (upsampled as
PaddleSeg's DetailAggregateLoss does). tests/parity/test_parity.py then converts the file and
compares. To keep the disk cost small (full 1001-class logits at two sizes took 9 GB, more than a CI
machine had free), each class head is kept at `KEPT_CHANNELS` seeded channels (the first and the last
among them) plus its per-pixel argmax over every class. Deliberately free of project imports: the
project's venv has no Paddle and this one has no torch.

Cityscapes (tests/parity/test_cityscapes_parity.py): a 19-class PP-LiteSeg-B `.pdparams` (the released
Cityscapes checkpoints' format) and PaddleSeg's evaluation outputs, `paddleseg.core.infer`'s whole-image
`inference` on one 2048x1024 image (logits at `CITYSCAPES_KEPT` channels + argmax) and its `aug_inference`
(flip, and scales 0.75/1.0/1.25 + flip) on a smaller one. (PaddleSeg 2.8.0's OhemCrossEntropyLoss cannot
run under paddlepaddle 3.3.1: once it mines, `prob + (1 - valid_mask)` adds int64 to float32, which Paddle 3
refuses; training/loss.py's OHEM is checked on hand-computed cases instead.)

    python tests/parity/paddle_side.py OUT_DIR
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
from paddleseg.core.infer import aug_inference, inference
from paddleseg.models import PPLiteSeg, STDCSeg
from paddleseg.models.backbones import STDC1, STDC2

# name -> (builder, class count); the class counts vary on purpose ("any count" is part of the check).
NETWORKS = {
    "stdc1_seg": (lambda classes: STDCSeg(classes, STDC1()), 19),
    "stdc2_seg": (lambda classes: STDCSeg(classes, STDC2()), 1001),
    "pp_liteseg_t": (lambda classes: PPLiteSeg(classes, STDC1(), arm_out_chs=[32, 64, 128],
                                               seg_head_inter_chs=[32, 64, 64]), 21),
    "pp_liteseg_b": (lambda classes: PPLiteSeg(classes, STDC2()), 1001),
}
SIZES = ((128, 192), (113, 145))  # one multiple of 32, one odd size
BATCH = 2
KEPT_CHANNELS = 24
CITYSCAPES = "pp_liteseg_b_cityscapes"
CITYSCAPES_CLASSES = 19
FULL_SIZE = (1024, 2048)  # Cityscapes' own (height, width): the reference evaluates whole images
AUG_SIZE = (128, 256)
AUG_MODES = {"flip": ([1.0], True), "ms_flip": ([0.75, 1.0, 1.25], True)}
CITYSCAPES_KEPT = [0, 5, 13, 18]  # road, pole, car, bicycle: 4 of 19 channels of the full-size logits (32 MB)


def kept_channels(classes: int, rng: np.random.Generator) -> list[int]:
    """Every class when there are few; else the first, the last and seeded ones between, in order."""
    if classes <= KEPT_CHANNELS:
        return list(range(classes))
    middle = rng.choice(np.arange(1, classes - 1), KEPT_CHANNELS - 2, replace=False)
    return [0, *sorted(int(c) for c in middle), classes - 1]


def randomise(model: paddle.nn.Layer, rng: np.random.Generator) -> None:
    """He-scaled conv weights, non-trivial biases and BN affine parameters and running statistics."""
    state = {}
    for name, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if name.endswith("_scale"):  # UAFM's constant 1 (stop_gradient): PaddleSeg never changes it
            value = np.ones(shape)
        elif name.endswith("_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("_mean"):
            value = rng.normal(0.0, 0.2, shape)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif name.endswith("weight"):  # BN gamma
            value = rng.uniform(0.5, 1.5, shape)
        else:  # BN beta and conv biases
            value = rng.normal(0.0, 0.2, shape)
        state[name] = value.astype("float32")
    model.set_state_dict(state)


def all_heads(model: paddle.nn.Layer, images: paddle.Tensor) -> dict[str, np.ndarray]:
    """PaddleSeg's training-branch outputs computed with eval-mode BatchNorm (running statistics)."""
    model.eval()
    model.training = True  # only the top-level switch: PaddleSeg's forward returns every head, BN stays in eval
    outputs = model(images)
    model.training = False
    heads = {"main": outputs[0], "aux1": outputs[1], "aux2": outputs[2]}
    if len(outputs) > 3:  # STDC-Seg's detail logits, at 1/8: DetailAggregateLoss upsamples them like this
        heads["detail"] = F.interpolate(outputs[3], images.shape[2:], mode="bilinear", align_corners=True)
    main_eval = model(images)[0]
    heads["eval"] = main_eval
    return {key: value.numpy() for key, value in heads.items()}


def cityscapes_outputs(folder: Path, rng: np.random.Generator) -> None:
    """The 19-class PP-LiteSeg-B file and PaddleSeg's evaluation outputs (see the module's docstring)."""
    model = PPLiteSeg(CITYSCAPES_CLASSES, STDC2())
    randomise(model, rng)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(folder / "model.pdparams"))
    with paddle.no_grad():
        image = rng.normal(0.0, 1.0, (1, 3, *FULL_SIZE)).astype("float32")
        np.save(folder / "full_input.npy", image)
        logits = inference(model, paddle.to_tensor(image)).numpy()
        np.save(folder / "full_logits.npy", logits[:, CITYSCAPES_KEPT])
        np.save(folder / "full_argmax.npy", logits.argmax(1).astype("int8"))
        image = rng.normal(0.0, 1.0, (1, 3, *AUG_SIZE)).astype("float32")
        np.save(folder / "aug_input.npy", image)
        for mode, (scales, flip) in AUG_MODES.items():
            _, averaged = aug_inference(model, paddle.to_tensor(image), [], scales=scales, flip_horizontal=flip)
            np.save(folder / f"aug_{mode}.npy", averaged.numpy())
    (folder / "meta.json").write_text(json.dumps({"num_classes": CITYSCAPES_CLASSES, "kept": CITYSCAPES_KEPT,
                                                  "aug_modes": AUG_MODES, "paddle": paddle.__version__}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", nargs="*", choices=sorted([*NETWORKS, CITYSCAPES]),
                        help="a subset of the networks")
    args = parser.parse_args()
    paddle.set_device("cpu")
    paddle.seed(0)
    timings = {}
    if CITYSCAPES in (args.only or [CITYSCAPES]):
        start = time.perf_counter()
        rng = np.random.default_rng(2000)
        cityscapes_outputs(args.out / CITYSCAPES, rng)
        print(f"{CITYSCAPES}: 19 classes, whole-image inference at {FULL_SIZE}, aug_inference at {AUG_SIZE} "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
    for name in [name for name in args.only or NETWORKS if name in NETWORKS]:
        start = time.perf_counter()
        build, classes = NETWORKS[name]
        rng = np.random.default_rng(1000 + list(NETWORKS).index(name))
        model = build(classes)
        randomise(model, rng)
        channels = kept_channels(classes, rng)
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        paddle.save(model.state_dict(), str(folder / "model.pdparams"))
        with paddle.no_grad():
            for height, width in SIZES:
                images = rng.normal(0.0, 1.0, (BATCH, 3, height, width)).astype("float32")
                np.save(folder / f"input_{height}x{width}.npy", images)
                for key, value in all_heads(model, paddle.to_tensor(images)).items():
                    if value.shape[1] == classes:
                        np.save(folder / f"{key}_argmax_{height}x{width}.npy", value.argmax(1).astype("int16"))
                        value = value[:, channels]
                    np.save(folder / f"{key}_{height}x{width}.npy", value)
        timings[name] = round(time.perf_counter() - start, 1)
        (folder / "meta.json").write_text(json.dumps({"model": name, "num_classes": classes, "channels": channels,
                                                      "sizes": SIZES, "paddle": paddle.__version__}))
        print(f"{name}: {classes} classes, outputs at {SIZES} in {timings[name]} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
