"""A node of a two-node Ray cluster lost mid-explain: the run finishes on the other node (or stops in one
line and the same command resumes it), and the store is bit-identical to a clean run's."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from core.store import open_store
from core.store_check import list_arrays
from pipeline.cli import store_path
from tests.helpers.cli import MAX_LINE, ROOT
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import generate_labels, tiny_config

FUSE = {"fg_threshold": 0.4, "bg_threshold": 0.2, "num_workers": 1}


@pytest.mark.slow
def test_a_node_lost_mid_explain_leaves_a_bit_identical_store(ray_local, tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=6)
    config = tiny_config(tmp_path / "cluster", data, fuse=FUSE)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    out = tmp_path / "runs.json"
    subprocess.run([sys.executable, "-m", "tests.helpers.two_node_explain", str(config_file), str(out)], cwd=ROOT,
                   check=True, timeout=1200)
    runs = json.loads(out.read_text())
    assert runs[0]["removed_mid_run"], "the run ended before the node could be removed"
    for run in runs:
        assert "Traceback" not in run["stderr"] and "\x1b[" not in run["stderr"], run["stderr"][-3000:]
    if runs[0]["returncode"] != 0:  # stopped: in one line, and the same command resumed it
        line = [line for line in runs[0]["stderr"].replace("\r", "\n").splitlines() if line.strip()][-1]
        assert runs[0]["returncode"] == 1 and line.startswith("error: ") and len(line) <= MAX_LINE, line
    assert runs[-1]["returncode"] == 0, runs[-1]["stderr"][-3000:]

    clean = generate_labels(tiny_config(tmp_path / "clean", data, fuse=FUSE))
    group = open_store(store_path(config), mode="r")
    assert list_arrays(group).keys() == list_arrays(clean).keys()
    for name, array in list_arrays(clean).items():
        np.testing.assert_array_equal(group[name][:], array[:], err_msg=name)
