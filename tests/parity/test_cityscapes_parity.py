"""A PaddleSeg Cityscapes checkpoint converts, and evaluates here as PaddleSeg evaluates it (`make test-parity`).

tests/parity/paddle_side.py wrote a 19-class PP-LiteSeg-B `.pdparams` with seeded random weights (the format
of the released Cityscapes checkpoints) and PaddleSeg's own evaluation outputs: `paddleseg.core.infer.inference`
on one whole 2048x1024 image, and `aug_inference` (flip; scales 0.75/1.0/1.25 + flip) on a smaller one. Here
the file goes through `python -m training convert-pdparams`, and the evaluator's own functions
(training/evaluate.py, as `eval-cityscapes` runs them) must give the same logits: relative max error
(max |ours - PaddleSeg| / max |PaddleSeg|) <= 1e-4 (and absolute <= 1e-4 at 2048x1024) and the same argmax
on every pixel. `eval.average=logits`
is PaddleSeg 2.8's averaging of the views (the default, softmax, is its 2.7 and earlier).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.cityscapes import write_cityscapes
from core.config import load_config
from training.__main__ import main as training_cli
from training.checkpoints import load_complete
from training.evaluate import InferenceMode, forward_view, predict_modes
from training.finetune_cityscapes import run_eval
from training.models import PADDLESEG, create_model

PARITY_DIR = os.environ.get("PARITY_DIR")
if not PARITY_DIR:
    pytest.skip("PaddleSeg outputs come from `make test-parity`", allow_module_level=True)
FOLDER = Path(PARITY_DIR) / "pp_liteseg_b_cityscapes"
REPO = Path(__file__).resolve().parents[2]
MAX_RELATIVE_ERROR = 1e-4
MAX_ABSOLUTE_ERROR = 1e-4  # on the full-resolution logits (their largest magnitude is a few units)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The .pdparams through the CLI, loaded as eval-cityscapes loads a checkpoint."""
    target = tmp_path_factory.mktemp("converted") / "pp_liteseg_b_cityscapes.pt"
    assert training_cli(["convert-pdparams", str(FOLDER / "model.pdparams"), str(target), "--model", "pp_liteseg_b",
                         "--quiet"]) == 0
    payload = torch.load(target, weights_only=True)
    assert payload["pssl_model"] == {"name": "pp_liteseg_b", "variant": PADDLESEG, "num_classes": 19,
                                     "converted_from": str(FOLDER / "model.pdparams")}
    model = create_model("pp_liteseg_b", 19, variant=PADDLESEG)
    load_complete(model, target)
    return target, model.eval()


def errors(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    difference = np.abs(ours - theirs).max()
    return float(difference), float(difference / np.abs(theirs).max())


def test_whole_image_inference_at_2048x1024_matches_paddleseg(converted):
    _, model = converted
    meta = json.loads((FOLDER / "meta.json").read_text())
    image = torch.from_numpy(np.load(FOLDER / "full_input.npy"))
    assert image.shape == (1, 3, 1024, 2048)
    with torch.no_grad():
        logits = forward_view(model, image, 1.0, False).numpy()
    absolute, relative = errors(logits[:, meta["kept"]], np.load(FOLDER / "full_logits.npy"))
    agreement = float((logits.argmax(1) == np.load(FOLDER / "full_argmax.npy")).mean())
    print(f"\n2048x1024 whole image: max abs difference {absolute:.2e}, relative {relative:.2e}, "
          f"argmax agreement {100 * agreement:.4f} %")
    assert absolute <= MAX_ABSOLUTE_ERROR and relative <= MAX_RELATIVE_ERROR and agreement == 1.0


@pytest.mark.parametrize("mode", ["flip", "ms_flip"])
def test_flip_and_multi_scale_inference_match_paddleseg_aug_inference(converted, mode):
    _, model = converted
    scales, flip = json.loads((FOLDER / "meta.json").read_text())["aug_modes"][mode]
    image = torch.from_numpy(np.load(FOLDER / "aug_input.npy"))
    averaged = predict_modes(model, image, [InferenceMode(mode, tuple(scales), flip)], average="logits")[mode]
    theirs = np.load(FOLDER / f"aug_{mode}.npy")
    absolute, relative = errors(averaged.numpy(), theirs)
    agreement = float((averaged.numpy().argmax(1) == theirs.argmax(1)).mean())
    print(f"\n{mode} {tuple(image.shape[-2:])}: max abs difference {absolute:.2e}, relative {relative:.2e}, "
          f"argmax agreement {100 * agreement:.4f} %")
    assert relative <= MAX_RELATIVE_ERROR and agreement == 1.0


def test_eval_cityscapes_scores_the_pdparams_as_it_scores_the_converted_file(converted, tmp_path):
    target, _ = converted
    root = write_cityscapes(tmp_path / "data", images_per_city=2)
    scores = {}
    for name, checkpoint in (("pdparams", FOLDER / "model.pdparams"), ("converted", target)):
        config = load_config(REPO / "conf" / "finetune_cityscapes_pp_liteseg_b_pssl.yaml", [
            f"run.out_dir={tmp_path / name}", f"data.root={root}", f"eval.checkpoint={checkpoint}",
            "augment.mean=[0.5,0.5,0.5]", "augment.std=[0.5,0.5,0.5]", "eval.workers=0", "eval.num_samples=1"])
        results = json.loads((run_eval(config) / "results.json").read_text())
        scores[name] = {mode: value["confusion_matrix"] for mode, value in results["modes"].items()}
    assert scores["pdparams"] == scores["converted"] and set(scores["pdparams"]) == {"single scale", "flip", "ms+flip"}
