"""Resuming pre-training refuses a checkpoint trained on another store, before anything in its folder changes."""
from __future__ import annotations

import yaml

from tests.helpers.store_files import checksums
from tests.helpers.training import pretrain_config, write_store
from training.__main__ import main as cli_main


def test_resume_refuses_a_checkpoint_trained_on_another_store(tmp_path, capsys):
    first, second = write_store(tmp_path / "a", n=2), write_store(tmp_path / "b", n=2)
    out = tmp_path / "out"
    config = {**pretrain_config(first, out, epochs=1), "num_classes": 32, "ignore_index": 32}
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump(config))
    assert cli_main(["pretrain", "--config", str(config_file)]) == 0
    before = checksums(out)
    capsys.readouterr()

    assert cli_main(["pretrain", "--config", str(config_file), f"data.store={second}", "train.epochs=2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and len(err.strip()) <= 200, err
    assert err == (f"error: run.resume: the checkpoint was trained on data.store={first.resolve()}; "
                   "set run.out_dir to a new folder or run.resume=null\n")
    assert checksums(out) == before
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["store"] == str(first)

    # the same store resumes as before
    assert cli_main(["pretrain", "--config", str(config_file), "train.epochs=2"]) == 0
    assert "resumed from" in capsys.readouterr().out
