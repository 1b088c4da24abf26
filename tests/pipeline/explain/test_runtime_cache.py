"""One runtime cache for every run: configurable, keyed by the weights, safe when two processes export at once."""
from __future__ import annotations

import subprocess
import sys

import torch

from pipeline.explain.runtime import RunOptions, fingerprint, runtime_cache_dir
from tests.helpers.cli import ROOT
from tests.pipeline.explain.test_runtime import tiny

EXPORT = """
import sys, torch
from pathlib import Path
from pipeline.explain.runtime import cached_session, fingerprint
from tests.pipeline.explain.test_runtime import tiny
classifier = tiny(1)
session = cached_session(classifier.net, 32, Path(sys.argv[1]) / f"cnn-{fingerprint(classifier.net, 32)}.onnx")
print(float(session(torch.ones(1, 3, 32, 32)).sum()))
"""


def test_the_cache_folder_is_configured_else_the_users(tmp_path, monkeypatch):
    assert RunOptions(cache=str(tmp_path / "c")).cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PSSL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    assert RunOptions().cache_dir() == tmp_path / "user" / "pssl" / "runtime"
    monkeypatch.setenv("PSSL_CACHE", str(tmp_path / "env"))
    assert runtime_cache_dir() == tmp_path / "env"


def test_two_processes_exporting_at_once_share_one_file(tmp_path):
    runs = [subprocess.Popen([sys.executable, "-c", EXPORT, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert outputs[0][0] == outputs[1][0]  # both sessions compute the same logits from the one file
    net = tiny(1).net
    assert [p.name for p in tmp_path.glob("*.onnx")] == [f"cnn-{fingerprint(net, 32)}.onnx"]
    assert not list(tmp_path.glob("*.tmp"))  # no half-written export left behind
    with torch.no_grad():
        assert abs(float(net(torch.ones(1, 3, 32, 32)).sum()) - float(outputs[0][0])) < 1e-4
