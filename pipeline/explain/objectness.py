"""The class-agnostic object map: an ONNX model (ISNet by default) that says, per pixel, "part of an object".

The classifiers' explanations know which class is where but not where the object ends; a salient-object
segmenter knows the extent but not the class. The explain stage runs it as one more member, in the
same workers and pass, and stores its map at `saliency/<name>/objectness` (core/store.py); the fuse
rules of `pipeline.fuse.object_rules` combine the two.

Contract of the model file (`explain.objectness`): one float32 input [1, 3, H, W] of RGB pixels as
(x - mean) / std (x in 0..255), one output [1, 1, H, W] (or [1, H, W]) in [0, 1]. A file exported with
a fixed H, W is run at `input_size` by freeing those two dimensions in memory (ISNet's convolutions
accept any multiple of 32); nothing is written back to the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.config import ConfigError
from core.schema import ObjectnessSection
from pipeline.explain.objectness_model import DEFAULT_PATH, check_model_file

SIZE_MULTIPLE = 32  # ISNet's six 2x downsamplings; other models accept it too


def resolved_settings(spec: ObjectnessSection | dict | None) -> dict | None:
    """`explain.objectness` with the schema's defaults filled in, or None when there is no object model."""
    if not spec:
        return None
    settings = (spec if isinstance(spec, ObjectnessSection) else ObjectnessSection(**spec)).model_dump()
    if settings["input_size"] % SIZE_MULTIPLE:
        raise ConfigError(f"explain.objectness.input_size must be a multiple of {SIZE_MULTIPLE}, "
                          f"got {settings['input_size']}")
    return settings


def model_file(settings: dict) -> Path:
    """The object model's file, checked (one line naming `make objectness-model` when it is missing or wrong)."""
    path = os.path.expanduser(settings["model"])
    return check_model_file(path, expect_isnet=path == os.path.expanduser(DEFAULT_PATH))


def _free_spatial_dims(model_file: Path, input_name: str, output_name: str) -> bytes:
    """The model's bytes with the input's and the output's H and W made symbolic (and other outputs dropped:
    ISNet also returns five side outputs and six feature maps nobody reads)."""
    import onnx

    model = onnx.load(str(model_file))
    names = [value.name for value in model.graph.input]
    if input_name not in names or output_name not in [value.name for value in model.graph.output]:
        raise ConfigError(f"explain.objectness: {model_file} has inputs {names} and outputs "
                          f"{[v.name for v in model.graph.output]}; set objectness.input / objectness.output")
    keep = [value for value in model.graph.output if value.name == output_name]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    # the inner value_info stays: without it ISNet's stage-1 Concat failed at every size but its own
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, symbol in ((len(dims) - 2, "height"), (len(dims) - 1, "width")):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = symbol
    return model.SerializeToString()


def providers() -> list[str]:
    """CUDA when this ONNX Runtime build and machine have it, else the CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    wanted = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available and torch.cuda.is_available() else []
    return wanted + ["CPUExecutionProvider"]


class ObjectnessModel:
    """One loaded object model: `maps(rgbs, size)` -> float32 [B, size, size] object maps in [0, 1]."""

    def __init__(self, settings: dict, threads: int | None = None):
        import onnxruntime

        self.name, self.input_size = settings["name"], int(settings["input_size"])
        self.input_name, self.output_name = settings["input"], settings["output"]
        self.mean = np.asarray(settings["mean"], np.float32)[:, None, None]
        self.std = np.asarray(settings["std"], np.float32)[:, None, None]
        path = model_file(settings)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # shape notes about the freed dimensions are not the user's concern
        try:
            self.session = onnxruntime.InferenceSession(
                _free_spatial_dims(path, self.input_name, self.output_name), options, providers=providers())
        except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own Fail/InvalidGraph types
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"explain.objectness.model: {path} is not a usable ONNX model "
                              f"({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None

    def _input(self, rgb: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        resized = F.interpolate(pixels, size=(self.input_size, self.input_size), mode="bilinear", antialias=True,
                                align_corners=False)[0].numpy()
        return ((resized - self.mean) / self.std)[None].astype(np.float32)

    def maps(self, rgbs: list[np.ndarray], size: int) -> np.ndarray:
        """Each whole image (not a crop, as the classifiers see it) resized to the model's input, its map to size."""
        out = np.zeros((len(rgbs), size, size), np.float32)
        for i, rgb in enumerate(rgbs):
            try:
                raw = np.asarray(self.session.run([self.output_name], {self.input_name: self._input(rgb)})[0], np.float32)
            except Exception as error:  # noqa: BLE001 - ONNX Runtime's own error types; its message is one line
                raise ConfigError(f"explain.objectness: {self.name} failed at input_size {self.input_size} "
                                  f"({str(error).splitlines()[0][:160]}); try another input_size") from None
            plane = torch.from_numpy(raw.reshape(raw.shape[-2], raw.shape[-1]))[None, None]
            out[i] = F.interpolate(plane, size=(size, size), mode="bilinear", antialias=True,
                                   align_corners=False)[0, 0].clamp_(0, 1).numpy()
        return out
