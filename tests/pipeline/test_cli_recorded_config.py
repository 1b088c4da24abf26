"""config.yaml and the store's recorded config change only once the stage using them is accepted."""
from __future__ import annotations

import numpy as np

from core.store import MASK, open_store
from benchmarks.synthetic_store import make_synthetic_store
from tests.helpers.cli import fuse_only_config, pipeline_command, run_cli
from tests.helpers.images import write_image_folder


def test_a_refused_fuse_run_leaves_config_and_labels_untouched(tmp_path):
    store = tmp_path / "run" / "pssl.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    assert run_cli(pipeline_command(fuse_only_config(store, 0.5), tmp_path, "fuse")).returncode == 0
    recorded, written = open_store(store).attrs["config"], (store.parent / "config.yaml").read_text()
    labels = open_store(store)[MASK][:]
    assert recorded["fuse"]["fg_threshold"] == 0.5

    refused = run_cli(pipeline_command(fuse_only_config(store, 0.6), tmp_path, "fuse"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "store was fused with another fuse config" in refused.stderr and "fg_threshold" in refused.stderr
    group = open_store(store)
    assert group.attrs["config"] == recorded and (store.parent / "config.yaml").read_text() == written
    np.testing.assert_array_equal(group[MASK][:], labels)


def test_generate_labels_checks_the_fuse_config_before_any_stage_records(tmp_path):
    store = tmp_path / "run" / "pssl.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    assert run_cli(pipeline_command(fuse_only_config(store, 0.5), tmp_path, "fuse")).returncode == 0
    recorded, written = open_store(store).attrs["config"], (store.parent / "config.yaml").read_text()
    config = {**fuse_only_config(store, 0.6), "data": {"source": "imagefolder",
                                                  "root": str(write_image_folder(tmp_path / "data"))}}
    refused = run_cli(pipeline_command(config, tmp_path, "generate-labels"))
    assert refused.returncode == 1 and "store was fused with another fuse config" in refused.stderr
    assert open_store(store).attrs["config"] == recorded and (store.parent / "config.yaml").read_text() == written
