"""GPU benchmark of the explain stage's model work: one prepared script, about 10 minutes on one GPU.

For a ResNet-50 (torchvision) and an EfficientNet-B0 (timm), both with RANDOM weights (no weights
ship offline; throughput and mixed-precision fidelity do not depend on them), in fp32 and under
bf16 / fp16 autocast, channels_last: the raw forward and forward+backward bound (img/s at a full
batch), then Grad-CAM, SmoothGrad and LIME img/s, each as a fraction of the bound of the passes it
needs; and each mixed-precision map's fidelity against fp32 (mean per-image Pearson correlation,
and the fraction of label pixels that change when the model's three maps are fused with the
sample config's thresholds). The device is named in the results. Then the class-agnostic object model
(explain.objectness, ISNet from `make objectness-model`) on ONNX Runtime at its input sizes: fp32 on the
CUDA provider, fp16 on the TensorRT provider with fp16 enabled where this ONNX Runtime has it, with the
fp16 map's mean |difference| from fp32 and the pixels whose object mask (>= 0.5) changes. It needs
`onnxruntime-gpu` and the 88 MB model file on that machine (neither travels: the device carry limit is
64 MiB); missing, the table says so. The dry run uses a one-convolution object model made on the spot.

The GPU machine's Python has torch, torchvision, timm, numpy, scikit-image and numba but no network:
the rest (captum, lime, scikit-learn, zarr, dask, pyyaml and their dependencies) travels as wheels.

    .venv/bin/python -m benchmarks.gpu_bench --fetch-wheels            # here, once: wheels/gpu (gitignored)
    python -m benchmarks.gpu_bench --wheels wheels/gpu                 # on the GPU machine
    .venv/bin/python -m benchmarks.gpu_bench --dry-run                 # on a CPU, tiny sizes (the test)
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.result_file import write_result

# What the explain stage imports beyond torch, torchvision, timm, numpy, scikit-image and numba; carried at
# the versions installed here (no dependencies resolved on the GPU machine: this is the whole list).
CARRIED = ["captum", "lime", "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing",
           "python-dateutil", "scikit-learn", "joblib", "threadpoolctl", "zarr", "donfig", "numcodecs",
           "typing_extensions", "google-crc32c", "dask", "cloudpickle", "fsspec", "partd", "locket", "toolz", "click",
           "pyyaml", "tqdm", "importlib_metadata", "zipp"]
SOURCE_ONLY = {"lime"}  # published as an sdist only: built into a wheel here
PRECISIONS = ("fp32", "bf16", "fp16")


def fetch_wheels(folder: Path) -> None:
    """Wheels of CARRIED at this environment's versions, for Linux x86_64 CPython 3.11 (about 40 MB)."""
    from importlib.metadata import version
    folder.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={version(name)}" for name in CARRIED]
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder),
                    *(pin for pin in pins if pin.split("==")[0] in SOURCE_ONLY)], check=True)
    subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                    "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "-d", str(folder),
                    *(pin for pin in pins if pin.split("==")[0] not in SOURCE_ONLY)], check=True)


def install_carried(folder: Path) -> None:
    """Make the carried packages importable without a network: pip from the local wheels into a temp target."""
    if all(importlib.util.find_spec(name) is not None for name in ("captum", "lime", "sklearn", "zarr", "dask", "yaml")):
        return
    target = Path(tempfile.mkdtemp(prefix="gpu_bench_site_"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", "--target",
                    str(target), *map(str, sorted(folder.glob("*.whl")))], check=True)
    sys.path.insert(0, str(target))


def models(dry_run: bool) -> dict:
    """name -> (classifier net taking [0, 1] images, CAM layer, input size)."""
    import timm
    import torchvision
    from pipeline.explain.classifiers import IMAGENET_MEAN, IMAGENET_STD, Normalized
    if dry_run:
        resnet = torchvision.models.resnet18(weights=None, num_classes=10)
        effnet = timm.create_model("efficientnet_b0", pretrained=False, num_classes=10)
        size = 64
    else:
        resnet = torchvision.models.resnet50(weights=None)
        effnet = timm.create_model("efficientnet_b0", pretrained=False)
        size = 224
    return {"resnet50" if not dry_run else "resnet18": (Normalized(resnet, IMAGENET_MEAN, IMAGENET_STD), "net.layer4", size),
            "efficientnet_b0": (Normalized(effnet, IMAGENET_MEAN, IMAGENET_STD), "net.bn2", size)}


def photos(size: int, count: int, device):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from skimage import data
    pictures = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    batch = []
    for i in range(count):
        pixels = pictures[i % len(pictures)]
        pixels = pixels[:, ::-1] if (i // len(pictures)) % 2 else pixels
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255
        batch.append(F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(batch).clamp(0, 1).to(device)


def timed(run, device, repeats: int) -> float:
    """Best seconds of `repeats` runs after one warm-up on a GPU (cuDNN picks its kernels), synchronising around each."""
    import torch
    if device.type == "cuda":
        run()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def measure(name, net, layer_name, size, device, settings, precisions, bounds: dict) -> tuple[list[str], list[str]]:
    """Rows of the explainers' rates and of their fidelity against fp32; each precision's raw images/s of one
    forward and of one forward+backward go into `bounds[name][precision]` (what `pipeline plan --rates` reads)."""
    import numpy as np
    import torch
    from explainers import GradCam, Lime, SmoothGrad
    from pipeline.fuse.rules import fuse_maps, member_weights
    from pipeline.explain.runtime import RunOptions, eager_forward
    from pipeline.maps.stored import to_stored_maps

    net = net.eval().to(device)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    images = photos(size, settings["images"], device)
    batch = settings["batch"]
    full = images.repeat(-(-batch // len(images)), 1, 1, 1)[:batch]
    explainers = {"grad_cam": GradCam(layer=net.get_submodule(layer_name)),
                  "smooth_grad": SmoothGrad(samples=settings["sg_samples"], batch_size=settings["sg_samples"]),
                  "lime": Lime(samples=settings["lime_samples"], segments=50, batch_size=settings["lime_samples"])}
    rows, fidelity, reference = [], [], {}
    for precision in precisions:
        options = RunOptions(runtime="eager", channels_last=True, autocast=None if precision == "fp32" else precision)
        options.prepare(net)
        forward = eager_forward(net)

        def passes(backward: bool):
            def run():
                with options.precision(device):
                    if backward:
                        x = options.images(full).clone().requires_grad_(True)
                        net(x)[:, 0].float().sum().backward()
                    else:
                        forward(options.images(full))
            return run
        bound_forward = batch / timed(passes(False), device, settings["repeats"])
        bound_backward = batch / timed(passes(True), device, settings["repeats"])
        with torch.no_grad(), options.precision(device):
            targets = net(options.images(images)).argmax(1)
        maps = {}
        for explainer_name, explainer in explainers.items():
            runner = net if explainer.needs_gradients else forward
            out = {}

            def run(e=explainer, r=runner, o=out):
                with options.precision(device):
                    o["maps"] = e.explain(r, options.images(images) if e.needs_gradients else images, targets)
            rate = len(images) / timed(run, device, 1)
            maps[explainer_name] = to_stored_maps(out["maps"], size)[0]
            per_image = {"grad_cam": 1 / bound_backward, "lime": settings["lime_samples"] / bound_forward,
                         "smooth_grad": settings["sg_samples"] / bound_backward}[explainer_name]
            rows.append(f"| {name} | {precision} | {explainer_name} | {rate:.1f} | {1 / per_image:.1f} | "
                        f"{rate * per_image:.2f} |")
        rows.append(f"| {name} | {precision} | raw bound | forward {bound_forward:.0f} img/s | "
                    f"forward+backward {bound_backward:.0f} img/s | - |")
        bounds.setdefault(name, {})[precision] = {"forward": bound_forward, "forward_backward": bound_backward}
        if precision == "fp32":
            reference = maps
            continue
        n = len(images)
        weights, ok = member_weights(None, 3, n), np.ones(n, bool)
        labels = [fuse_maps([m[e] for e in explainers], weights, ok, 0.4, 0.2, keep_consensus=False)["mask"]
                  for m in (reference, maps)]
        correlations = {e: np.mean([np.corrcoef(reference[e][i].ravel().astype(np.float32),
                                                maps[e][i].ravel().astype(np.float32))[0, 1] for i in range(n)])
                        for e in explainers}
        fidelity.append(f"| {name} | {precision} | " + " | ".join(f"{correlations[e]:.4f}" for e in explainers)
                        + f" | {float((labels[0] != labels[1]).mean()):.2e} |")
    return rows, fidelity


def object_model_file(dry_run: bool, folder: Path) -> Path | None:
    """The ISNet file, or for the dry run a one-convolution model with its contract exported into `folder`."""
    import torch
    from pipeline.explain.objectness_model import DEFAULT_PATH

    if not dry_run:
        path = Path(os.path.expanduser(DEFAULT_PATH))
        return path if path.is_file() else None
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, padding=1), torch.nn.Sigmoid()).eval()
    path = folder / "tiny_object_model.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"])
    return path


def measure_objectness(model_file: Path | None, sizes: list[int], device, repeats: int) -> list[str]:
    """Rows of (size, precision, img/s, fp16 fidelity) for the object model on ONNX Runtime."""
    import numpy as np
    import onnxruntime
    from pipeline.explain.objectness import _free_spatial_dims

    if model_file is None:
        return ["| – | – | object model not found: run `make objectness-model` on this machine | – | – |"]
    available = onnxruntime.get_available_providers()
    wanted = {"fp32": [("CUDAExecutionProvider", {})] if device.type == "cuda" else [("CPUExecutionProvider", {})]}
    if device.type == "cuda" and "TensorrtExecutionProvider" in available:
        wanted["fp16"] = [("TensorrtExecutionProvider", {"trt_fp16_enable": True}), ("CUDAExecutionProvider", {})]
    graph = _free_spatial_dims(model_file, "input", "output")
    rows = []
    for size in sizes:
        pixels = (photos(size, 1, __import__("torch").device("cpu"))[0].numpy() * 255 - 128) / 256
        feed = {"input": pixels[None].astype(np.float32)}
        outputs = {}
        for precision, providers in wanted.items():
            if providers[0][0] not in available:
                rows.append(f"| {size} | {precision} | {providers[0][0]} not in this onnxruntime | – | – |")
                continue
            session = onnxruntime.InferenceSession(graph, providers=providers)
            outputs[precision] = session.run(["output"], feed)[0]  # warm-up: kernels (and TensorRT engines) built
            started = time.perf_counter()
            for _ in range(repeats):
                session.run(["output"], feed)
            rate = repeats / (time.perf_counter() - started)
            if precision == "fp32" or "fp32" not in outputs:
                rows.append(f"| {size} | {precision} | {rate:.1f} | – | – |")
            else:
                reference, got = outputs["fp32"], outputs[precision]
                rows.append(f"| {size} | {precision} | {rate:.1f} | {float(np.abs(got - reference).mean()):.2e} | "
                            f"{float(((got >= 0.5) != (reference >= 0.5)).mean()):.2e} |")
        if "fp16" not in wanted:
            rows.append(f"| {size} | fp16 | no TensorRT provider in this onnxruntime (or no GPU) | – | – |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny models and sizes on the CPU (what the test runs)")
    parser.add_argument("--wheels", type=Path, default=Path("wheels/gpu"), help="carried wheels, installed if needed")
    parser.add_argument("--fetch-wheels", action="store_true", help="download the carried wheels here, then stop")
    parser.add_argument("--out", type=Path, default=Path("results/gpu_bench.md"))
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        fetch_wheels(args.wheels)
        return 0
    if args.wheels.is_dir():
        install_carried(args.wheels)
    import torch
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.dry_run:
        print("gpu_bench: no GPU visible; use --dry-run to try it on a CPU", file=sys.stderr)
        return 1
    settings = ({"images": 2, "batch": 4, "sg_samples": 2, "lime_samples": 8, "repeats": 1} if args.dry_run else
                {"images": 16, "batch": 128, "sg_samples": 16, "lime_samples": 256, "repeats": 3})
    precisions = PRECISIONS if device.type == "cuda" else ("fp32", "bf16")
    torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    rows, fidelity, bounds = [], [], {}
    for name, (net, layer, size) in models(args.dry_run).items():
        got = measure(name, net, layer, size, device, settings, precisions, bounds)
        rows += got[0]
        fidelity += got[1]
    with tempfile.TemporaryDirectory() as scratch:
        object_rows = measure_objectness(object_model_file(args.dry_run, Path(scratch)),
                                         [64] if args.dry_run else [1024, 512, 320], device, settings["repeats"] * 4)
    lines = [f"# Explain-stage model work on {device_name}{' (dry run: tiny sizes)' if args.dry_run else ''}", "",
             f"Command: `python -m benchmarks.gpu_bench {' '.join(argv if argv is not None else sys.argv[1:])}`; "
             f"torch {torch.__version__}; random weights; channels_last; {settings['images']} photos, bound batch "
             f"{settings['batch']}, SmoothGrad {settings['sg_samples']} samples, LIME {settings['lime_samples']} "
             f"samples in one batch per image; {time.perf_counter() - started:.0f} s in all.", "",
             "| model | precision | explainer | img/s | bound img/s (its passes at the raw rate) | efficiency |",
             "|---|---|---|---:|---:|---:|", *rows, "",
             "Fidelity against fp32: mean per-image Pearson correlation of the maps, and label pixels changed "
             "(the model's three maps fused, thresholds 0.4 / 0.2):", "",
             "| model | precision | grad_cam | smooth_grad | lime | label pixels changed |", "|---|---|---:|---:|---:|---:|",
             *fidelity, "",
             "Object model (explain.objectness) on ONNX Runtime, one image per run; fp16 against fp32:", "",
             "| input size | precision | img/s | mean abs difference | object-mask pixels changed |",
             "|---:|---|---:|---:|---:|", *object_rows]
    write_result("\n".join(lines), args.out, {"device": device_name, "images_per_second": bounds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
