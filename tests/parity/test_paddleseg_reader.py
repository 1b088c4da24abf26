"""PaddleSeg's PSSLDataset reads what `export-paddleseg` writes (`make test-parity`).

The export runs here (the project's venv); tests/parity/paddle_reader_side.py runs PaddleSeg's reader
in the parity venv (PARITY_PYTHON); every pixel must come out as intended: the image's class where
the mask is 1 (and on the ignore band with --ignore-as foreground), background (1000) elsewhere.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main as pipeline_cli
from pipeline.paddleseg_format import _resize_nearest
from core.store import (FOREGROUND, IGNORE, INDEX_HEIGHT, INDEX_STATUS, INDEX_TARGET, INDEX_WIDTH, MASK, STATUS_OK,
                        open_store)
from tests.helpers.paddleseg_files import SAMPLE_LIKE_PATHS, sample_like_store
from tests.pipeline.test_paddleseg_format import WNIDS

PARITY_PYTHON = os.environ.get("PARITY_PYTHON")
if not PARITY_PYTHON:
    pytest.skip("PaddleSeg's reader runs in the parity venv of `make test-parity`", allow_module_level=True)
READER = Path(__file__).with_name("paddle_reader_side.py")
BACKGROUND_ID = 1000


@pytest.mark.parametrize("ignore_as", ["255", "background", "foreground"])
def test_paddleseg_reads_the_intended_class_or_background_per_pixel(tmp_path, capsys, ignore_as):
    store, out = sample_like_store(tmp_path, WNIDS), tmp_path / "export"
    assert pipeline_cli(["export-paddleseg", str(store), str(out), "--write-images", "--ignore-as", ignore_as]) == 0
    printed = capsys.readouterr().out
    assert f"written as {ignore_as}" in printed
    imagenet_root = printed.split("imagenet_root=")[1].split()[0]
    result = subprocess.run([PARITY_PYTHON, str(READER), imagenet_root, str(out), str(tmp_path / "read.npz")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    read = np.load(tmp_path / "read.npz")
    group = open_store(store)
    lines = (out / "train.txt").read_text().splitlines()
    rows = [i for i in range(len(SAMPLE_LIKE_PATHS)) if group[INDEX_STATUS][i] == STATUS_OK]
    assert len(lines) == len(rows) == len(SAMPLE_LIKE_PATHS)
    for index, row in enumerate(rows):
        mask = _resize_nearest(group[MASK][row], int(group[INDEX_HEIGHT][row]), int(group[INDEX_WIDTH][row]))
        object_pixels = (mask == FOREGROUND) | ((mask == IGNORE) if ignore_as == "foreground" else False)
        expected = np.where(object_pixels, int(group[INDEX_TARGET][row]), BACKGROUND_ID)
        assert np.array_equal(read[f"label_{index}"], expected), (ignore_as, row)
        assert tuple(read[f"image_shape_{index}"]) == (3, *mask.shape)
    assert (group[MASK][:] == IGNORE).any() and (group[MASK][:] == FOREGROUND).any()  # both cases occur
