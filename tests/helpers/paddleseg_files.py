"""PaddleSeg's file layouts for tests: `.pdparams` written from a `paddleseg`-variant network (no Paddle
needed), and a store whose image names PaddleSeg cannot resolve (as in the sample).

The layout (names, `_conv`/`_batch_norm`, `_mean`/`_variance`, `cp.` and `ppseg_head.` prefixes, biases
on the convs before BatchNorm, UAFM `_scale`, the unused detail heads, the name table) is what
`paddle.save` wrote in tests/parity/paddle_side.py; `make test-parity` checks the real thing, these
files let the fast suite exercise the converter and the loaders on every architecture.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

PADDLE_RENAMES = (
    (r"^backbone\.", "cp.backbone."),  # STDC-Seg only (its backbone sits in the context path)
    (r"^context\.", "cp."),
    (r"^sppm\.stages\.(\d+)\.", r"ppseg_head.cm.stages.\1.1."),
    (r"^sppm\.", "ppseg_head.cm."),
    (r"^uafms\.", "ppseg_head.arm_list."),
)


def paddleseg_name(name: str, stdc_seg: bool) -> str:
    for pattern, replacement in PADDLE_RENAMES if stdc_seg else PADDLE_RENAMES[1:]:
        name = re.sub(pattern, replacement, name)
    if not name.startswith(("backbone.", "cp.backbone.")):  # PaddleSeg's layers.ConvBNReLU / ConvBN
        name = re.sub(r"\.conv\.(weight|bias)$", r"._conv.\1", name)
        name = re.sub(r"\.bn\.(\w+)$", r"._batch_norm.\1", name)
    return name.replace("running_mean", "_mean").replace("running_var", "_variance")


def write_pdparams(model: torch.nn.Module, path: Path, seed: int = 0, extra: dict | None = None) -> Path:
    """Save `model` as PaddleSeg would; every conv before a BN outside the backbone gets a random bias,
    compensated in that BN's mean so the file computes exactly what `model` does."""
    rng = np.random.default_rng(seed)
    state = {name: tensor.detach().numpy().astype(np.float32) for name, tensor in model.state_dict().items()
             if not name.endswith("num_batches_tracked")}
    stdc_seg = "ffm.conv1.weight" in state
    arrays = {paddleseg_name(name, stdc_seg): value for name, value in state.items()}
    for name, value in state.items():
        bn_mean = re.sub(r"\.conv\.weight$", ".bn.running_mean", name)
        if not name.startswith("backbone.") and bn_mean != name and bn_mean in state:
            bias = rng.normal(0, 0.3, value.shape[0]).astype(np.float32)
            arrays[paddleseg_name(name.replace(".weight", ".bias"), stdc_seg)] = bias
            arrays[paddleseg_name(bn_mean, stdc_seg)] = state[bn_mean] + bias
    for name in [n for n in state if n.endswith("conv_atten.weight")]:
        bias = rng.normal(0, 0.3, state[name].shape[0]).astype(np.float32)
        arrays[name.replace("context.", "cp.").replace(".weight", ".bias")] = bias
        mean = name.replace("context.", "cp.").replace("conv_atten.weight", "bn_atten._mean")
        arrays[mean] = arrays[mean] + bias
    for index in range(3 if "uafms.0.conv_x.conv.weight" in state else 0):
        arrays[f"ppseg_head.arm_list.{index}._scale"] = np.ones(1, np.float32)
    if stdc_seg:
        for scale, channels in (("sp16", 512), ("sp4", 64), ("sp2", 32)):
            arrays[f"conv_out_{scale}.conv._conv.weight"] = rng.normal(0, 0.1, (64, channels, 3, 3)).astype(np.float32)
            arrays[f"conv_out_{scale}.conv_out.weight"] = rng.normal(0, 0.1, (1, 64, 1, 1)).astype(np.float32)
    arrays.update(extra or {})
    arrays["StructuredToParameterName@@"] = {name: f"param_{i}" for i, name in enumerate(arrays)}
    path.write_bytes(pickle.dumps(arrays, protocol=4))
    return path


def randomise_statistics(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN running statistics and affine parameters, so that no fold or rename can hide."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.eval()


SAMPLE_LIKE_PATHS = ["cat.png", "sub/rocket.jpg", "n00000001_2.JPEG"]


def sample_like_store(tmp_path: Path, wnids: list[str]) -> Path:
    """A fused store over images named as in the sample (no <wnid>_ prefix, not .JPEG), with real files."""
    from core.store import INDEX_HEIGHT, INDEX_PATH, INDEX_STATUS, INDEX_WIDTH, STATUS_OK, open_store, write_layout
    from pipeline.fuse import stage as fuse
    from benchmarks.synthetic_store import make_synthetic_store
    from tests.helpers.images import write_photo

    store = tmp_path / "sample.zarr"
    make_synthetic_store(store, len(SAMPLE_LIKE_PATHS), map_size=16, shard=2)
    group = open_store(store)
    write_layout(group, classes=wnids, data_root=str(tmp_path / "photos"))
    group[INDEX_PATH][:] = np.array(SAMPLE_LIKE_PATHS, dtype=object)
    group[INDEX_HEIGHT][:], group[INDEX_WIDTH][:] = 40, 48
    for i, name in enumerate(SAMPLE_LIKE_PATHS):
        write_photo(tmp_path / "photos" / name, seed=i, size=(40, 48))
    fuse.run({"fuse": {"refine": "none", "combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2}}, store)
    assert (group[INDEX_STATUS][:] == STATUS_OK).all()
    return store
