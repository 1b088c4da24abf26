"""Read PaddleSeg `.pdparams` without Paddle and without running code from the file; translate the names.

A `.pdparams` is a pickle of {parameter name: numpy array} (plus Paddle's
`StructuredToParameterName@@` table of strings). Unpickling an untrusted file can call any
importable function, so the unpickler admits exactly the globals numpy needs to rebuild an array;
anything else stops the read before it is called, with a one-line `PdparamsError`.

`translate` works from the file alone: it renames PaddleSeg's modules to this project's
(`cp.` -> `context.`, `ppseg_head.cm.` -> `sppm.`, `_conv`/`_batch_norm` -> `conv`/`bn`,
`_mean`/`_variance` -> `running_mean`/`running_var`, ...), folds each conv bias that feeds a
BatchNorm into that BN's running mean (BN(Wx + b) with mean m equals BN(Wx) with mean m - b, in eval
mode exactly; in train mode the batch mean removes b either way), checks PP-LiteSeg's constant
`_scale` is 1 and drops it, and drops the detail heads PaddleSeg builds but never runs. The result
fits the `paddleseg` variant of each network (training/models).
"""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.errors import PsslError

SUFFIX = ".pdparams"
# The only globals a pickled numpy array refers to (numpy < 2 writes numpy.core, numpy >= 2 numpy._core).
_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array constructor, wherever this numpy keeps it
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
PADDLE_NAME_TABLE = "StructuredToParameterName@@"
STEP_COUNTER = "num_batches_tracked"  # torch's BatchNorm counts its steps; Paddle's has no such tensor


class PdparamsError(PsslError, ValueError):
    """A `.pdparams` that cannot be read, was refused or does not fit; the message names the file."""


class _Refused(pickle.UnpicklingError):
    """The file named a global outside ALLOWED_GLOBALS (told apart from a merely damaged pickle)."""


class _ArraysOnly(pickle.Unpickler):
    """Every global a pickle names (also through copyreg extensions) passes find_class."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"refused to load {module}.{name}: a .pdparams holds only numpy arrays") from None


def is_pdparams(path: str | Path) -> bool:
    return str(path).endswith(SUFFIX)


def read_pdparams(path: str | Path) -> dict[str, np.ndarray]:
    """The file's arrays by parameter name; a foreign, damaged or crafted file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise PdparamsError(f"weights file not found: {path}")
    try:
        with path.open("rb") as file:
            content = _ArraysOnly(file).load()
    except _Refused as error:
        raise PdparamsError(f"{path}: {error}") from None
    except Exception as error:  # truncated or not a pickle: many exception types, none of them informative alone
        raise PdparamsError(f"{path} is not a readable .pdparams ({type(error).__name__}: {error})") from None
    if not isinstance(content, dict):
        raise PdparamsError(f"{path} holds a {type(content).__name__}, not a dict of arrays")
    content.pop(PADDLE_NAME_TABLE, None)
    arrays = {}
    for name, value in content.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray) or value.dtype == object:
            raise PdparamsError(f"{path}: entry {name!r} is a {type(value).__name__}, not a numeric array")
        arrays[name] = value
    if not arrays:
        raise PdparamsError(f"{path} holds no arrays")
    return arrays


# Applied in order to every PaddleSeg name.
RENAMES = (
    (r"^cp\.backbone\.", "backbone."),
    (r"^cp\.", "context."),
    (r"^ppseg_head\.cm\.stages\.(\d+)\.1\.", r"sppm.stages.\1."),
    (r"^ppseg_head\.cm\.", "sppm."),
    (r"^ppseg_head\.arm_list\.", "uafms."),
    (r"\._conv\.", ".conv."),
    (r"\._batch_norm\.", ".bn."),
    (r"\._mean$", ".running_mean"),
    (r"\._variance$", ".running_var"),
)
# A conv bias (this project's name) -> the running mean of the BatchNorm right after that conv.
FOLDS = ((r"^(.*)\.conv\.bias$", r"\1.bn.running_mean"), (r"^(.*)\.conv_atten\.bias$", r"\1.bn_atten.running_mean"))
UNUSED = ((r"^conv_out_sp(16|4|2)\.", "a detail head PaddleSeg builds but runs only with use_boundary_16/4/2 "
                                      "(off by default; training uses conv_out_sp8)"),)
CONSTANT_ONE = r"\._scale$"  # UAFM: y * (_scale - attention), a stop-gradient constant 1


@dataclass
class Translation:
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    mapped: dict[str, str] = field(default_factory=dict)  # PaddleSeg name -> this project's
    folded: dict[str, str] = field(default_factory=dict)  # PaddleSeg conv bias -> BN running mean it went into
    dropped: dict[str, str] = field(default_factory=dict)  # PaddleSeg name -> why

    def lines(self) -> list[str]:
        return ([f"  mapped  {src} -> {dst}" for src, dst in self.mapped.items()]
                + [f"  folded  {src} -> {dst} (subtracted)" for src, dst in self.folded.items()]
                + [f"  dropped {src}: {why}" for src, why in self.dropped.items()])


def rename(name: str) -> str:
    for pattern, replacement in RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def _fold_target(name: str) -> str | None:
    for pattern, replacement in FOLDS:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name)
    return None


def translate(arrays: dict[str, np.ndarray]) -> Translation:
    """This project's state dict for a PaddleSeg state dict, with the fate of every PaddleSeg entry."""
    result = Translation()
    renamed = {rename(name): name for name in arrays}
    biases = {}
    for name, source in renamed.items():
        reason = next((why for pattern, why in UNUSED if re.match(pattern, name)), None)
        target = _fold_target(name)
        if reason:
            result.dropped[source] = reason
        elif re.search(CONSTANT_ONE, name):
            if not np.array_equal(arrays[source], np.ones_like(arrays[source])):
                raise PdparamsError(f"{source} is {arrays[source].tolist()}, not the constant 1 PaddleSeg's UAFM "
                                    "uses; this converter cannot express that")
            result.dropped[source] = "constant 1 (UAFM fuses y * (1 - attention))"
        elif target is not None and target in renamed:
            biases[source] = target
        else:
            result.state[name] = torch.from_numpy(np.array(arrays[source], dtype=np.float32))
            result.mapped[source] = name
    for source, target in biases.items():
        bias = torch.from_numpy(np.array(arrays[source], dtype=np.float32))
        if bias.shape != result.state[target].shape:
            raise PdparamsError(f"{source} has shape {tuple(bias.shape)} but its BatchNorm {target} has "
                                f"{tuple(result.state[target].shape)}")
        result.state[target] = result.state[target] - bias
        result.folded[source] = target
    return result
