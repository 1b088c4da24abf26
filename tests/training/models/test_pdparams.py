"""PaddleSeg .pdparams without Paddle: the restricted reader refuses crafted pickles, the converter maps
every tensor (folding conv biases into BN), and the result computes what the source network does and
loads wherever a checkpoint loads. PaddleSeg itself is compared in `make test-parity`."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ConfigError
from training.__main__ import main as training_cli
from training.checkpoints import checkpoint_variant, load_complete, load_pretrained, resolve_variant
from training.convert_pdparams import convert
from training.models import PADDLESEG, PYTORCH, create_model
from tests.helpers.paddleseg_files import randomise_statistics, write_pdparams
from training.pdparams import PdparamsError, read_pdparams, translate


class WritesAFile:
    """Unpickling this runs os.system: what a crafted .pdparams could do to a careless reader."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pickle_is_refused_in_one_line_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    crafted = tmp_path / "model.pdparams"
    crafted.write_bytes(pickle.dumps({"conv.weight": np.zeros((2, 2), np.float32), "x": WritesAFile(marker)}))
    # the file is genuinely harmful: a plain unpickler (in a throwaway process) runs the command
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(crafted)!r}, 'rb'))"], check=True)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(PdparamsError, match=r"refused to load posix\.system") as refused:
        read_pdparams(crafted)
    assert "\n" not in str(refused.value)
    assert not marker.exists()
    assert training_cli(["convert-pdparams", str(crafted), str(tmp_path / "out.pt"), "--model", "stdc1_seg"]) == 1
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("content,message", [(b"not a pickle", "not a readable"),
                                             (pickle.dumps([1, 2]), "not a dict"),
                                             (pickle.dumps({"w": np.array([object()])}), "refused"),
                                             (pickle.dumps({"w": "text"}), "not a numeric array")])
def test_foreign_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.pdparams"
    path.write_bytes(content)
    with pytest.raises(PdparamsError, match=message):
        read_pdparams(path)


def test_translate_renames_folds_and_drops_with_reasons():
    bias, mean = np.array([0.5, -1.0], np.float32), np.array([2.0, 3.0], np.float32)
    arrays = {"cp.arm16.conv._conv.weight": np.zeros((2, 3, 3, 3), np.float32),
              "cp.arm16.conv._conv.bias": bias,
              "cp.arm16.conv._batch_norm._mean": mean,
              "cp.arm16.conv._batch_norm._variance": np.ones(2, np.float32),
              "ppseg_head.cm.stages.1.1._batch_norm.weight": np.ones(2, np.float32),
              "ppseg_head.arm_list.0._scale": np.ones(1, np.float32),
              "conv_out_sp4.conv_out.weight": np.zeros((1, 2, 1, 1), np.float32)}
    result = translate(arrays)
    assert result.mapped["cp.arm16.conv._conv.weight"] == "context.arm16.conv.conv.weight"
    assert result.mapped["ppseg_head.cm.stages.1.1._batch_norm.weight"] == "sppm.stages.1.bn.weight"
    assert result.mapped["cp.arm16.conv._batch_norm._variance"] == "context.arm16.conv.bn.running_var"
    assert result.folded == {"cp.arm16.conv._conv.bias": "context.arm16.conv.bn.running_mean"}
    assert result.state["context.arm16.conv.bn.running_mean"].tolist() == [1.5, 4.0]
    assert set(result.dropped) == {"ppseg_head.arm_list.0._scale", "conv_out_sp4.conv_out.weight"}
    assert "use_boundary" in result.dropped["conv_out_sp4.conv_out.weight"]
    with pytest.raises(PdparamsError, match="not the constant 1"):
        translate({**arrays, "ppseg_head.arm_list.0._scale": np.array([2.0], np.float32)})


@pytest.mark.parametrize("name", ["stdc1_seg", "pp_liteseg_t"])
def test_converted_file_computes_what_the_source_network_computes(tmp_path, name):
    torch.manual_seed(0)
    source = randomise_statistics(create_model(name, 7, variant=PADDLESEG))
    path = write_pdparams(source, tmp_path / "model.pdparams")
    model, translation, report = convert(path, name)
    assert translation.folded and translation.dropped and not report.skipped
    images = torch.randn(2, 3, 65, 97)
    with torch.no_grad():
        expected, actual = source.all_outputs(images), model.eval().all_outputs(images)
    for ours, theirs in zip(actual.logits, expected.logits):
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * theirs.abs().max().item())
    # the CLI writes a checkpoint that the strict loader (eval-voc) accepts and that names its variant
    out = tmp_path / "converted.pt"
    assert training_cli(["convert-pdparams", str(path), str(out), "--model", name, "--quiet"]) == 0
    assert checkpoint_variant(out) == PADDLESEG
    assert load_complete(create_model(name, 7, variant=PADDLESEG), out).loaded


def test_wrong_model_name_is_refused(tmp_path):
    path = write_pdparams(create_model("pp_liteseg_t", 3, variant=PADDLESEG), tmp_path / "t.pdparams")
    with pytest.raises(PdparamsError, match="does not fit stdc1_seg"):
        convert(path, "stdc1_seg")


def test_variant_follows_the_weights_and_a_conflict_is_an_error(tmp_path):
    path = write_pdparams(create_model("stdc1_seg", 3, variant=PADDLESEG), tmp_path / "s.pdparams")
    plain = tmp_path / "plain.pt"
    torch.save({"model": create_model("stdc1_seg", 3).state_dict()}, plain)
    assert resolve_variant(None, [path]) == PADDLESEG
    assert resolve_variant(None, [plain, None]) == PYTORCH
    assert resolve_variant(None, []) == PYTORCH
    with pytest.raises(ConfigError, match="model.variant=pytorch but .* holds paddleseg"):
        resolve_variant(PYTORCH, [path])


def test_a_pdparams_initialises_fine_tuning_with_its_heads_skipped(tmp_path):
    torch.manual_seed(0)
    source = randomise_statistics(create_model("pp_liteseg_t", 1001, variant=PADDLESEG))
    path = write_pdparams(source, tmp_path / "pssl.pdparams")
    model = create_model("pp_liteseg_t", 21, variant=PADDLESEG)
    report = load_pretrained(model, path)
    assert sorted(report.skipped) == [f"seg_heads.{i}.conv_out.weight" for i in range(3)]
    assert torch.equal(model.backbone.features[3].conv_list[1].conv.weight,
                       source.backbone.features[3].conv_list[1].conv.weight)


@pytest.mark.slow
def test_pretraining_starts_from_a_pdparams_in_the_variant_it_needs(tmp_path, capsys):
    """`model.pretrained=x.pdparams`: the paddleseg variant is chosen, recorded, and its weights loaded."""
    import yaml

    from tests.helpers.training import pretrain_config, write_store

    torch.manual_seed(0)
    source = create_model("stdc1_seg", 32, variant=PADDLESEG)
    weights = write_pdparams(source, tmp_path / "init.pdparams")
    config = {**pretrain_config(write_store(tmp_path, n=2), tmp_path / "out", epochs=1, max_steps=1, lr=1e-30,
                                image_every_steps=0), "num_classes": 32, "ignore_index": 32}
    config["model"]["pretrained"] = str(weights)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert training_cli(["pretrain", "--config", str(tmp_path / "c.yaml")]) == 0
    assert f"initialised from {weights}" in capsys.readouterr().out
    saved = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert saved["model"]["variant"] == PADDLESEG
    last = tmp_path / "out" / "checkpoints" / "last.pt"
    assert checkpoint_variant(last) == PADDLESEG  # a trainer checkpoint shows its variant in its tensors
    trained = torch.load(last, weights_only=True)["model"]
    # lr 1e-30 (train.lr must be > 0): the conv weights are still the file's (BN statistics move in train mode,
    # so compare convs)
    for name in ("ffm.conv1.bias", "backbone.features.2.conv_list.1.conv.weight"):
        torch.testing.assert_close(trained[name], source.state_dict()[name], atol=1e-20, rtol=0)


def test_backbone_weights_from_a_pdparams(tmp_path):
    """`model.backbone_weights=x.pdparams` (PaddleSeg's STDC backbones): the backbone part loads by name."""
    from training.models.stdcnet import STDCNet, load_stdcnet_weights

    torch.manual_seed(2)
    source = create_model("stdc1_seg", 3, variant=PADDLESEG)
    path = write_pdparams(source, tmp_path / "s.pdparams")
    backbone = STDCNet("stdc1", pool_excludes_padding=True)
    report = load_stdcnet_weights(backbone, path)
    assert all(name.endswith("num_batches_tracked") for name in report.missing)  # Paddle has no step counter
    assert len(report.loaded) + len(report.missing) == len(backbone.state_dict())
    assert torch.equal(backbone.features[4].avd_layer[1].running_var, source.backbone.features[4].avd_layer[1].running_var)
