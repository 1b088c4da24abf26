"""No-grad forward passes (classify, LIME's perturbed batches) through the fastest runtime that agrees.

Eager PyTorch is not a CPU's limit: the same network runs several times faster under ONNX Runtime
with the same outputs (docs/measurements.md; benchmarks/bench_lime.py prints the runtimes side by
side). `explain.runtime` picks one: `auto` (ONNX Runtime on a CPU when it is installed, else eager),
`eager`, or `onnxruntime`. A model is exported once per weights (the file name carries a hash of
the weights, input size and torch version; the exporter is deterministic) into one cache that every
run and every worker shares (`explain.runtime_cache`, default the user's cache folder, rather than
an export per run folder), and checked against eager on a fixed probe batch before use: top-1
identical and softmax within 1e-4, else eager is used and a one-line notice says why.

The CAM explainers (Grad-CAM, LayerCAM, multi-scale CAM) need gradients only from the logits back to
the CAM layer. Where a classifier is split there (`Classifier.trunk` / `head`), `split_network` runs
the trunk on ONNX Runtime too, at any input size, and only the head eagerly, with maps equal to
eager's within float rounding. SmoothGrad needs the input's gradient, so it always runs the eager
network.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from filelock import FileLock
from torch import nn

from core.config import ConfigError

RUNTIMES = ("auto", "eager", "onnxruntime")
AUTOCAST = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}
SOFTMAX_TOLERANCE = 1e-4
FEATURE_TOLERANCE = 1e-4  # max |trunk features, ONNX Runtime - eager| / max |eager|
OPSET = 17
PROBE_IMAGES = 4

Forward = Callable[[torch.Tensor], torch.Tensor]  # [B, 3, S, S] in [0, 1] -> logits [B, classes]


@dataclass(frozen=True)
class RunOptions:
    """How the explain stage runs its networks: `explain.runtime`, `explain.channels_last`, `explain.autocast`.

    channels_last makes a forward + input-gradient backward cheaper on a CPU (benchmarks/bench_explain.py
    measures both); autocast (bf16/fp16) is opt-in, for GPUs, because it changes the maps
    (benchmarks/gpu_bench.py measures by how much).
    """
    runtime: str = "auto"
    channels_last: bool = True
    autocast: str | None = None
    cache: str | None = None  # explain.runtime_cache; None: runtime_cache_dir's default
    reduced_decode: bool = True  # explain.reduced_decode: JPEGs decoded by DCT scaling, no smaller than the input
    device_decode: bool = True  # explain.device_decode: on a GPU, a shard's JPEGs decoded there (nvJPEG)

    def __post_init__(self):
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"explain.runtime must be one of {list(RUNTIMES)}, got {self.runtime!r}")
        if self.autocast not in AUTOCAST:
            raise ConfigError(f"explain.autocast must be null, bf16 or fp16, got {self.autocast!r}")

    def cache_dir(self) -> Path:
        return runtime_cache_dir(self.cache)

    def prepare(self, net: nn.Module) -> nn.Module:
        """The network as the gradient explainers run it (channels_last weights when asked)."""
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def images(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def precision(self, device: torch.device):
        """The autocast context forward passes run in (a no-op for fp32)."""
        dtype = AUTOCAST[self.autocast]
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def runtime_cache_dir(configured: str | None = None) -> Path:
    """Where exported runtimes live: `explain.runtime_cache`, else $PSSL_CACHE, else <user cache>/pssl/runtime.

    One folder for every run (file names carry the weights' hash, so runs never clash); on a cluster
    point it at shared storage and each model is exported once for all nodes, or leave the default and
    each node exports once into its own user cache.
    """
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("PSSL_CACHE"):
        return Path(os.environ["PSSL_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "pssl" / "runtime"


def eager_forward(net: nn.Module) -> Forward:
    def forward(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return net(images)
    return forward


class OnnxForward:
    """An ONNX Runtime session behind the same tensor-in, tensor-out call as the eager network."""

    def __init__(self, model_file: Path, threads: int):
        import onnxruntime
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": pixels})[0]).to(images.device)


def fingerprint(net: nn.Module, input_size: int) -> str:
    """Hash of the weights, input size and torch version: the exported file is valid exactly as long as these."""
    digest = hashlib.sha256(f"{torch.__version__}|{input_size}|{OPSET}".encode())
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_onnx(net: nn.Module, input_size: int, path: Path, output: str = "logits", any_size: bool = False) -> Path:
    """Export once (TorchScript exporter: byte-identical output for the same weights), atomically.

    `any_size`: the input's height and width stay free (the trunk for multi-scale CAM), not only the batch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = torch.zeros(1, 3, input_size, input_size)
    free_in, free_out = (({0: "batch", 2: "height", 3: "width"}, {0: "batch", 2: "out_height", 3: "out_width"})
                         if any_size else ({0: "batch"}, {0: "batch"}))
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.onnx.export(net, (probe,), temporary, dynamo=False, opset_version=OPSET, input_names=["images"],
                          output_names=[output], dynamic_axes={"images": free_in, output: free_out})
        os.replace(temporary, path)  # concurrent workers write identical bytes; the last rename wins harmlessly
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def cached_session(net: nn.Module, input_size: int, model_file: Path, **export) -> OnnxForward:
    """An ONNX Runtime session of `net` from its cache file, exported first when the file is not there yet.

    A lock file beside it lets one process export while the others (runs or workers sharing the cache)
    wait and then read its file, instead of each exporting the same model again."""
    if not model_file.is_file():
        model_file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{model_file}.lock"):
            if not model_file.is_file():
                export_onnx(net, input_size, model_file, **export)
    return OnnxForward(model_file, torch.get_num_threads())


def agreement(net: nn.Module, forward: Forward, input_size: int) -> tuple[bool, float]:
    """(top-1 identical and softmax within tolerance, max softmax difference) on a fixed probe batch."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(PROBE_IMAGES, 3, input_size, input_size, generator=generator)
    with torch.inference_mode():
        expected = net(probe).softmax(dim=1)
    got = forward(probe).softmax(dim=1)
    difference = float((expected - got).abs().max())
    return bool((expected.argmax(1) == got.argmax(1)).all()) and difference <= SOFTMAX_TOLERANCE, difference


def onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnxruntime_wanted(runtime: str, device: torch.device) -> bool:
    """Whether `explain.runtime` asks for ONNX Runtime on this device; a request it cannot meet is a ConfigError."""
    RunOptions(runtime)  # validates the name
    wanted = runtime == "onnxruntime" or (runtime == "auto" and device.type == "cpu" and onnxruntime_installed())
    if wanted and device.type != "cpu":
        raise ConfigError("explain.runtime=onnxruntime runs on the CPU only; use auto or eager with a GPU")
    if wanted and not onnxruntime_installed():
        raise ConfigError("explain.runtime=onnxruntime but onnxruntime is not installed (pip install -r requirements.txt)")
    return wanted


def no_grad_forward(classifier, runtime: str, cache_dir: Path, device: torch.device) -> tuple[Forward, str]:
    """The forward the classify pass and LIME use for a loaded classifier, and the runtime's name.

    Call it before `RunOptions.prepare`: the export and the agreement check read the eager network.
    """
    net, input_size = classifier.net, classifier.input_size
    if not onnxruntime_wanted(runtime, device):
        return eager_forward(net), "eager"
    model_file = Path(cache_dir) / f"{classifier.name}-{fingerprint(net, input_size)}.onnx"
    forward = cached_session(net, input_size, model_file)
    agrees, difference = agreement(net, forward, input_size)
    if not agrees:
        print(f"explain.runtime: onnxruntime disagrees with eager on {model_file.name} (softmax differs by "
              f"{difference:.1e} or top-1 changed); using eager", file=sys.stderr)
        return eager_forward(net), "eager"
    return forward, "onnxruntime"


class SplitNetwork(nn.Module):
    """A classifier as its trunk (no gradients: any runtime) then its head (eager), with an identity between them.

    The CAM explainers take that identity as their layer: Captum makes its output require gradients, so
    their backward pass runs through the head alone, and the trunk may be an ONNX Runtime session.
    """

    def __init__(self, trunk: Forward, head: nn.Module):
        super().__init__()
        self.trunk, self.head, self.layer = trunk, head, nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.trunk(images)))


def split_network(classifier, runtime: str, cache_dir: Path, device: torch.device) -> SplitNetwork | None:
    """The classifier's trunk on ONNX Runtime (any input size) before its eager head, for the CAM explainers.

    None where the classifier has no split, the runtime is not ONNX Runtime, or the trunk's features
    disagree with eager (a one-line notice says so): the CAM explainers then run the whole eager network.
    """
    if classifier.trunk is None or classifier.head is None or not onnxruntime_wanted(runtime, device):
        return None
    trunk, input_size = classifier.trunk, classifier.input_size
    model_file = Path(cache_dir) / f"{classifier.name}-trunk-{fingerprint(trunk, input_size)}.onnx"
    forward = cached_session(trunk, input_size, model_file, output="features", any_size=True)
    difference = feature_difference(trunk, forward, input_size)
    if difference > FEATURE_TOLERANCE:
        print(f"explain.runtime: the ONNX Runtime trunk {model_file.name} differs from eager by {difference:.1e} "
              f"of its features' scale; the CAM explainers use the eager network", file=sys.stderr)
        return None
    return SplitNetwork(forward, classifier.head)


def feature_difference(trunk: nn.Module, forward: Forward, input_size: int) -> float:
    """max |forward - eager| / max |eager| of the trunk's features on fixed probes at the input size and at an odd,
    smaller one (multi-scale CAM feeds other sizes)."""
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for size in (input_size, input_size // 2 + 1):
        probe = torch.rand(2, 3, size, size, generator=generator)
        with torch.inference_mode():
            expected = trunk(probe)
        scale = float(expected.abs().max()) or 1.0
        worst = max(worst, float((forward(probe) - expected).abs().max()) / scale)
    return worst
