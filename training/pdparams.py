"""Read PaddleSeg `.pdparams` without Paddle, and without ever running code from the file.

A `.pdparams` is a pickle of {parameter name: numpy array} (plus Paddle's
`StructuredToParameterName@@` table of strings). Unpickling an untrusted file can call any
importable function, so the unpickler admits exactly the globals numpy needs to rebuild an array;
anything else stops the read before it is called, with a one-line `PdparamsError`.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from training.trainer import TrainingError

SUFFIX = ".pdparams"
# The only globals a pickled numpy array refers to (numpy < 2 writes numpy.core, numpy >= 2 numpy._core).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
PADDLE_NAME_TABLE = "StructuredToParameterName@@"


class PdparamsError(TrainingError):
    """A `.pdparams` that cannot be read or was refused; the message names the file."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a .pdparams holds only "
                                         "numpy arrays") from None


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
    except pickle.UnpicklingError as error:
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
