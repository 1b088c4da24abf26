"""A .pdparams written by PaddleSeg itself fine-tunes on VOC directly, in the project's venv (no Paddle).

`make finetune-voc CHECKPOINT=x.pdparams` in miniature: the CLI on a generated VOC-layout dataset,
initialised from the STDC1-Seg file tests/parity/paddle_side.py saved (19 classes -> VOC's 21: the
classifiers are skipped and listed, everything else loads).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.voc import write_voc
from tests.training.test_finetune_voc import small_config

PARITY_DIR = os.environ.get("PARITY_DIR")
if not PARITY_DIR:
    pytest.skip("the PaddleSeg-written .pdparams come from `make test-parity`", allow_module_level=True)
REPO = Path(__file__).resolve().parents[2]


def test_finetune_voc_from_a_paddleseg_pdparams(tmp_path):
    weights = Path(PARITY_DIR).resolve() / "stdc1_seg" / "model.pdparams"
    config = small_config(tmp_path, write_voc(tmp_path / "data", num_images=4),
                          **{"model.name": "stdc1_seg", "model.pretrained": str(weights), "augment.crop": 64,
                             "train.iterations": 2, "train.batch_size": 2})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "training", "finetune-voc", "--config", str(tmp_path / "c.yaml")],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"initialised from {weights}" in result.stdout
    skipped = json.loads((tmp_path / "run" / "results.json").read_text())["skipped"]
    assert sorted(skipped) == ["conv_out.conv_out.bias", "conv_out.conv_out.weight", "conv_out16.conv_out.bias",
                               "conv_out16.conv_out.weight", "conv_out8.conv_out.bias", "conv_out8.conv_out.weight"]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model"]["variant"] == "paddleseg"
