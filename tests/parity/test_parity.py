"""This project's networks against PaddleSeg's own: same .pdparams, same outputs (`make test-parity`).

tests/parity/paddle_side.py (in the parity venv) wrote, per network, a .pdparams with random weights
and BN statistics, input batches and PaddleSeg's eval-mode outputs; here the file is converted with
the project's converter (no Paddle in this venv) and every head is compared: relative max error
(max |ours - PaddleSeg| / max |PaddleSeg|) <= 1e-4 and the same argmax on every pixel (the same sign
for the one-channel detail logits). Without PARITY_DIR (set by `make test-parity`) there is nothing
to compare against and the module is skipped.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from training.convert_pdparams import convert
from training.models import PYTORCH, create_model
from training.models.weights import load_matching

PARITY_DIR = os.environ.get("PARITY_DIR")
if not PARITY_DIR:
    pytest.skip("PaddleSeg outputs come from `make test-parity`", allow_module_level=True)

MAX_RELATIVE_ERROR = 1e-4
NETWORKS = ("stdc1_seg", "stdc2_seg", "pp_liteseg_t", "pp_liteseg_b")
HEADS = {"main": lambda out: out.logits[0], "aux1": lambda out: out.logits[1], "aux2": lambda out: out.logits[2],
         "detail": lambda out: out.detail}


def compared(folder: Path, meta: dict, head: str, size: str, ours: np.ndarray) -> tuple[float, float]:
    """(relative max error on the channels PaddleSeg's side kept, fraction of pixels with the same decision):
    the argmax over every class, or the sign of one-channel logits."""
    theirs = np.load(folder / f"{head}_{size}.npy")
    if ours.shape[1] == meta["num_classes"]:
        same = ours.argmax(1) == np.load(folder / f"{head}_argmax_{size}.npy")
        ours = ours[:, meta["channels"]]
    else:
        same = (ours > 0) == (theirs > 0)
    assert ours.shape == theirs.shape, (folder.name, head)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max()), float(same.mean())


@pytest.fixture(scope="module", params=NETWORKS)
def case(request):
    folder = Path(PARITY_DIR) / request.param
    model, translation, _ = convert(folder / "model.pdparams", request.param)
    assert translation.mapped and not set(translation.mapped) & set(translation.folded)
    return request.param, folder, model.eval(), json.loads((folder / "meta.json").read_text())


def test_every_head_matches_paddleseg(case):
    name, folder, model, meta = case
    rows = []
    for height, width in meta["sizes"]:
        images = torch.from_numpy(np.load(folder / f"input_{height}x{width}.npy"))
        with torch.no_grad():
            outputs = model.all_outputs(images)
            eval_main = model(images).numpy()
        ours = {head: pick(outputs) for head, pick in HEADS.items() if pick(outputs) is not None}
        ours = {head: value.numpy() for head, value in ours.items()} | {"eval": eval_main}
        for head, value in ours.items():
            rows.append((name, f"{height}x{width}", head, *compared(folder, meta, head, f"{height}x{width}", value)))
    report = Path(PARITY_DIR) / f"{name}.tsv"
    report.write_text("".join(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]:.2e}\t{r[4]:.6f}\n" for r in rows))
    print("".join(f"\n{r[0]} {r[1]} {r[2]}: relative max error {r[3]:.2e}, agreement {100 * r[4]:.4f} %" for r in rows))
    assert {row[2] for row in rows} >= {"main", "aux1", "aux2", "eval"}
    assert all(row[3] <= MAX_RELATIVE_ERROR for row in rows), rows
    assert all(row[4] == 1.0 for row in rows), rows


def test_the_pytorch_variant_does_not_match_so_the_check_can_fail(case):
    """The same tensors in the `pytorch` variant (padding-counting pool, no FFM biases, a zero classifier
    bias): PaddleSeg's outputs are missed by far more than the tolerance."""
    name, folder, converted, meta = case
    model = create_model(name, meta["num_classes"], variant=PYTORCH)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)
    load_matching(model, converted.state_dict())
    height, width = meta["sizes"][-1]
    with torch.no_grad():
        ours = model.eval()(torch.from_numpy(np.load(folder / f"input_{height}x{width}.npy"))).numpy()
    error, agreement = compared(folder, meta, "eval", f"{height}x{width}", ours)
    print(f"\n{name} {height}x{width} pytorch variant: relative max error {error:.2e}, agreement {100 * agreement:.2f} %")
    assert error > 100 * MAX_RELATIVE_ERROR
