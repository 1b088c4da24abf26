"""`python -m pipeline plan`: what a config will cost before it runs: passes, device hours, store size.

Every explainer's cost is counted in network passes per image (a forward, or a forward and a backward
to the input or to the CAM layer), from its own settings: SmoothGrad's samples, LIME's samples,
multi-scale CAM's scales (a pass at scale s costs s^2 of one at the input size) and flip. The time
of a pass comes from measured rates:
- `--measure N`: N of the user's own images, on this machine, with each configured network;
- `--rates FILE`: a GPU benchmark's figures (benchmarks/gpu_bench.py writes them as JSON beside its Markdown:
  per model, images/s of one forward and of one forward+backward);
- else this machine's explain benchmark (results/bench_explain.json: EfficientNet-Lite0's passes, two
  workers at once).
A network not measured is scaled from a measured one by its FLOPs (counted on the meta device, no
weights needed). That is a projection, not a measurement: depthwise networks run further from their
FLOPs than dense ones, so read it to a factor of about two.

Store bytes: CAM maps are kept at their feature grid (float32, the input side / 32 squared), other
maps, the object map and a labels-only store at the sizes measured on the embedded default
(results/labels_only.json, benchmarks/bench_labels_only.py). Every measurement is read from the JSON
figures the benchmarks write, in the results/ folder beside this package (or `--results DIR`), so the
plan works from any working folder and no number is copied into the code.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.config import ConfigError, typed
from core.schema import PipelineConfig
from core.errors import PsslError
from core.store import OBJECTNESS

IMAGENET_TRAIN_IMAGES = 1_281_167
RESULTS = Path(__file__).resolve().parents[1] / "results"  # this checkout's results/, wherever the command runs
EXPLAIN_FIGURES = ("bench_explain.json", "python -m benchmarks.bench_explain")
OBJECTNESS_FIGURES = ("bench_objectness.json", "python -m benchmarks.bench_objectness")
STORE_FIGURES = ("labels_only.json", "python -m benchmarks.bench_labels_only runs/sample/pssl.zarr")
CAM_STRIDE = 32  # feature grid of the torchvision / EfficientNet CNNs: input side / 32
GRID_EXPLAINERS = ("grad_cam", "layer_cam")


class PlanError(PsslError, ValueError):
    """A plan that cannot be made (an explainer whose passes are not known, an unreadable rates file)."""


@dataclass(frozen=True)
class Passes:
    """Per image, in passes at the classifier's input size: no-grad forwards, forward+backward to the input,
    forward+backward to the CAM layer."""
    forward: float = 0.0
    input_gradient: float = 0.0
    layer_gradient: float = 0.0

    @property
    def forwards(self) -> float:
        return self.forward + self.input_gradient + self.layer_gradient

    @property
    def backwards(self) -> float:
        return self.input_gradient + self.layer_gradient


def explainer_passes(name: str, params: dict | None) -> Passes:
    """The passes one explainer makes per image, with its defaults where the config leaves a key out."""
    from explainers import EXPLAINERS
    import inspect

    if name not in EXPLAINERS:
        raise PlanError(f"plan: unknown explainer {name!r}")
    defaults = {k: p.default for k, p in inspect.signature(EXPLAINERS[name]).parameters.items()
                if p.default is not inspect.Parameter.empty}
    settings = {**defaults, **(params or {})}
    if name in GRID_EXPLAINERS:
        return Passes(layer_gradient=1.0)
    if name == "smooth_grad":
        return Passes(input_gradient=float(settings["samples"]))
    if name == "lime":
        return Passes(forward=float(settings["samples"]))
    if name == "multi_scale_cam":
        copies = 2.0 if settings["flip"] else 1.0
        return Passes(layer_gradient=copies * sum(float(s) ** 2 for s in settings["scales"]))
    raise PlanError(f"plan: the passes of explainer {name!r} are not known to pipeline/plan.py")


SCORE_PASSES = Passes(forward=1.0)  # the classify pass (target probability, top-1)


@dataclass(frozen=True)
class Rates:
    """Images per second of one network on one device, for each kind of pass, and where they come from."""
    forward: float
    input_gradient: float
    layer_gradient: float
    source: str

    def seconds(self, passes: Passes) -> float:
        return (passes.forward / self.forward + passes.input_gradient / self.input_gradient
                + passes.layer_gradient / self.layer_gradient)

    def scaled(self, factor: float, source: str) -> "Rates":
        return Rates(self.forward * factor, self.input_gradient * factor, self.layer_gradient * factor, source)


def architecture(spec: dict) -> tuple[nn.Module, int, nn.Module | None]:
    """The classifier's network, input size and CAM layer; random weights where its weights are not on this
    machine (FLOPs and timings do not depend on them)."""
    from pipeline.explain.classifiers import TORCHVISION_CAM_LAYERS, ClassifierError, load_classifier

    try:
        classifier = load_classifier(spec)
        return classifier.net, classifier.input_size, classifier.cam_layer
    except ClassifierError:
        arch = spec["arch"]
        if arch.startswith("torchvision."):
            import torchvision
            name = arch.removeprefix("torchvision.")
            net = torchvision.models.get_model(name, weights=None)
            layer = spec.get("cam_layer") or next((v for k, v in TORCHVISION_CAM_LAYERS.items()
                                                   if name.startswith(k)), None)
            return net, int(spec.get("input_size", 224)), net.get_submodule(layer) if layer else None
        if arch.startswith("timm."):
            import timm
            net = timm.create_model(arch.removeprefix("timm."), pretrained=False)
            layer = spec.get("cam_layer") or net.feature_info[-1]["module"]
            return net, int(spec.get("input_size", net.pretrained_cfg["input_size"][-1])), net.get_submodule(layer)
        raise


def forward_flops(net: nn.Module, input_size: int) -> float:
    """FLOPs of one forward of one image, counted on the meta device (no memory, no weights)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = net.to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.zeros(1, 3, input_size, input_size, device="meta"))
    return float(counter.get_total_flops())


def read_figures(path: Path, made_by: str) -> dict:
    """A benchmark's JSON figures; one line naming the benchmark when they are missing or unreadable."""
    if not path.is_file():
        raise PlanError(f"plan: {path} is missing (run `{made_by}`, or pass --measure N)")
    try:
        figures = json.loads(path.read_text())
    except ValueError:
        figures = None
    if not isinstance(figures, dict):
        raise PlanError(f"plan: {path} is not a benchmark's JSON figures (re-run `{made_by}`)")
    return figures


def _figure(figures: dict, path: Path, made_by: str, *keys: str):
    value = figures
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise PlanError(f"plan: {path} has no {'.'.join(keys)} (re-run `{made_by}`)")
        value = value[key]
    return value


def machine_rates(results: Path = RESULTS) -> tuple[str, Rates]:
    """(model, rates) of this machine's explain benchmark: the median of its sustained rounds per pass."""
    name, made_by = EXPLAIN_FIGURES
    path = results / name
    figures = read_figures(path, made_by)
    model = _figure(figures, path, made_by, "model")
    rates = {kind: statistics.median(_figure(figures, path, made_by, "sustained_images_per_second", kind))
             for kind in ("forward", "input_gradient", "layer_gradient")}
    return model, Rates(**rates, source=f"{path} ({model} on this machine = one device)")


def gpu_rates(path: Path) -> dict[str, Rates]:
    """{model: rates} from benchmarks/gpu_bench.py's figures, fp32 (the gradient passes to the CAM layer are taken
    at the forward+backward rate: an upper bound on their cost)."""
    made_by = "python -m benchmarks.gpu_bench"
    if not path.is_file():
        raise PlanError(f"plan: --rates {path}: no such file")
    per_model = _figure(read_figures(path, made_by), path, made_by, "images_per_second")
    rates = {}
    for model, precisions in per_model.items():
        fp32 = precisions.get("fp32") if isinstance(precisions, dict) else None
        if fp32:
            rates[model] = Rates(fp32["forward"], fp32["forward_backward"], fp32["forward_backward"], f"{path}")
    if not rates:
        raise PlanError(f"plan: --rates {path} has no fp32 rates of benchmarks/gpu_bench.py")
    return rates


def objectness_seconds(input_size: int, results: Path = RESULTS) -> tuple[float, str]:
    """(seconds per image on the whole machine, where from) of the object model at `input_size`: the median of
    its benchmark at that size (else at the nearest measured size, scaled by the pixel count), divided by the
    runs its cores hold at once (cores / threads per run), as the explain rates count the machine as one device."""
    name, made_by = OBJECTNESS_FIGURES
    path = results / name
    figures = read_figures(path, made_by)
    medians = {int(size): float(_figure(timing, path, made_by, "median"))
               for size, timing in _figure(figures, path, made_by, "seconds_per_image").items()}
    if not medians:
        raise PlanError(f"plan: {path} has no timings (re-run `{made_by}`), or set explain.objectness=null")
    runs = max(1, int(_figure(figures, path, made_by, "cores")) // int(_figure(figures, path, made_by, "threads")))
    nearest = min(medians, key=lambda size: abs(size - input_size))
    seconds = medians[nearest] * (input_size / nearest) ** 2 / runs
    where = "" if nearest == input_size else f" at {nearest}, scaled by pixels to {input_size}"
    return seconds, f"{path}{where} ({runs} one-thread runs at once on this machine = one device)"


@dataclass(frozen=True)
class StoreSizes:
    """KB per image, measured on the embedded default: each map per model, and what a labels-only store keeps."""
    map_kb: dict[str, float]
    labels_only_kb: float

    @classmethod
    def read(cls, results: Path = RESULTS) -> "StoreSizes":
        name, made_by = STORE_FIGURES
        path = results / name
        figures = read_figures(path, made_by)
        return cls(dict(_figure(figures, path, made_by, "map_kb_per_image_and_model")),
                   float(_figure(figures, path, made_by, "per_image_kb_at_scale", "labels_only")))

    def map_of(self, explainer: str) -> float:
        """An explainer never measured counts as the dearest one that was."""
        return self.map_kb.get(explainer, max(self.map_kb.values(), default=0.0))


def measured_rates(spec: dict, images: torch.Tensor, batch: int, runtime: str) -> Rates:
    """Each pass of one network timed on these images (this machine, the explain stage's runtime for no-grad
    forwards), best of three rounds."""
    from pipeline.explain.runtime import runtime_cache_dir

    net, input_size, layer = architecture(spec)
    net.eval()
    images = torch.nn.functional.interpolate(images, size=(input_size, input_size), mode="bilinear",
                                             antialias=True, align_corners=False)
    forward = _no_grad_forward(net, input_size, runtime, runtime_cache_dir())

    def rate(step) -> float:
        best = math.inf
        for _ in range(3):
            started = time.perf_counter()
            for start in range(0, len(images), batch):
                step(images[start:start + batch])
            best = min(best, time.perf_counter() - started)
        return len(images) / best

    def input_gradient(x):
        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            torch.autograd.grad(net(x).amax(dim=1).sum(), x)

    features = []

    def layer_gradient(x):  # as Captum's layer attribution: no graph before the layer, gradients back to it
        with torch.enable_grad():
            logits = net(x)
            torch.autograd.grad(logits.amax(dim=1).sum(), features.pop())

    rates = [rate(forward), rate(input_gradient)]
    if layer is None:  # no CAM layer known: its passes are timed as the dearer input-gradient pass
        return Rates(*rates, rates[1], "measured here (--measure)")
    handle = layer.register_forward_hook(lambda module, inputs, output: features.append(o := output.detach()
                                                                                        .requires_grad_(True)) or o)
    try:
        return Rates(*rates, rate(layer_gradient), "measured here (--measure)")
    finally:
        handle.remove()


def _no_grad_forward(net: nn.Module, input_size: int, runtime: str, cache: Path):
    from pipeline.explain.classifiers import Classifier
    from pipeline.explain.runtime import no_grad_forward

    classifier = Classifier("plan", net, input_size, net)
    return no_grad_forward(classifier, runtime, cache, torch.device("cpu"))[0]


def store_kb(explainers: list[str], input_sizes: list[int], sizes: StoreSizes) -> float:
    """KB per image of the full (compact) store: every member's maps plus what a labels-only store keeps."""
    maps = 0.0
    for size in input_sizes:
        grid = math.ceil(size / CAM_STRIDE) ** 2 * 4 / 1000
        maps += sum(grid if e in GRID_EXPLAINERS else sizes.map_of(e) for e in explainers)
    return maps + sizes.labels_only_kb


def count_images(config: PipelineConfig, given: int | None) -> tuple[int, str]:
    """(images, where the number comes from): --images, else the data root's listing, else ImageNet's train set."""
    if given:
        return given, "--images"
    root = config.data.root
    if config.data.source == "sample":
        from pipeline.index.sample import SAMPLE_FILES
        return len(SAMPLE_FILES), "the embedded sample"
    if not root:
        return IMAGENET_TRAIN_IMAGES, "ImageNet's train set: no data.root given"
    from pipeline.index.sources import enumerate_images
    return len(enumerate_images(config, Path("."))[1]), f"data.root {root}"


def user_images(config: PipelineConfig, count: int, folder: Path) -> torch.Tensor:
    """The first `count` readable images of the configured data, decoded and resized as the explain stage does,
    [count, 3, 224, 224] in [0, 1] (each network's timing resizes them to its own input)."""
    from core.images import BadImage, load_rgb
    from pipeline.explain.stage import resize_batch
    from pipeline.index.sources import enumerate_images

    listing = enumerate_images(config, folder)
    rgbs = []
    for path in listing.paths:
        try:
            rgbs.append(load_rgb(listing.root / path))
        except BadImage:
            continue
        if len(rgbs) == count:
            break
    if not rgbs:
        raise PlanError(f"plan --measure: no readable image under {listing.root}")
    return resize_batch(rgbs, 224, torch.device("cpu"))


@dataclass(frozen=True)
class Row:
    model: str
    explainer: str  # "scores" for the classify pass
    passes: Passes
    seconds_per_image: float  # on one device


@dataclass(frozen=True)
class Plan:
    images: int
    images_from: str
    devices: int
    rows: list[Row]
    rate_sources: dict[str, str]
    gflops: dict[str, float]
    full_kb: float
    labels_only_kb: float

    def device_hours(self, rows: list[Row] | None = None) -> float:
        return sum(r.seconds_per_image for r in (rows or self.rows)) * self.images / 3600


def make_plan(config: PipelineConfig | dict, images: int | None = None, devices: int = 1, measure: int = 0,
              rates_file: Path | None = None, work_dir: Path = Path("runs/plan"), results: Path = RESULTS) -> Plan:
    from pipeline.explain.classifiers import model_specs

    config = typed(config, PipelineConfig)
    specs = model_specs(config.explain)
    explainers = config.explain.explainers
    count, source = count_images(config, images)
    networks = {spec["name"]: architecture(spec)[:2] for spec in specs}
    flops = {name: forward_flops(net, size) for name, (net, size) in networks.items()}
    rates = _rates(config, specs, flops, measure, rates_file, work_dir, results)
    store_sizes = StoreSizes.read(results)
    rows = []
    for spec in specs:
        name = spec["name"]
        rows.append(Row(name, "scores", SCORE_PASSES, rates[name].seconds(SCORE_PASSES)))
        for explainer, params in explainers.items():
            passes = explainer_passes(explainer, params)
            rows.append(Row(name, explainer, passes, rates[name].seconds(passes)))
    sizes = [size for _, size in networks.values()]
    sources = {n: r.source for n, r in rates.items()}
    full_kb = store_kb(list(explainers), sizes, store_sizes)
    objects = config.explain.objectness
    if objects is not None:  # one more member: its pass on the CPU of this machine, its map in the store
        seconds, sources[objects.name] = objectness_seconds(objects.input_size, results)
        rows.append(Row(objects.name, OBJECTNESS, Passes(forward=1.0), seconds))
        full_kb += store_sizes.map_of(OBJECTNESS)
    return Plan(count, source, devices, rows, sources, {n: f / 1e9 for n, f in flops.items()}, full_kb,
                store_sizes.labels_only_kb)


def _rates(config: PipelineConfig, specs: list[dict], flops: dict[str, float], measure: int, rates_file: Path | None,
           work_dir: Path, results: Path) -> dict[str, Rates]:
    """Rates per configured network: measured here, read from a GPU benchmark, or this machine's benchmark,
    networks without their own numbers scaled from a measured one by FLOPs."""
    if measure:
        images = user_images(config, measure, work_dir)
        batch, runtime = config.explain.batch_size, config.explain.runtime
        return {spec["name"]: measured_rates(spec, images, batch, runtime) for spec in specs}
    if rates_file is not None:
        known = gpu_rates(rates_file)
    else:
        model, rates = machine_rates(results)
        known = {model: rates}
    reference = next(iter(known))
    if reference not in flops:
        net, size, _ = architecture({"arch": reference, "name": reference})
        flops = {**flops, reference: forward_flops(net, size)}
    out = {}
    for spec in specs:
        name, arch = spec["name"], spec["arch"].removeprefix("torchvision.").removeprefix("timm.")
        own = known.get(name) or known.get(arch)
        out[name] = own or known[reference].scaled(
            flops[reference] / flops[name], f"{known[reference].source}, scaled by FLOPs from {reference}")
    return out


def format_plan(plan: Plan) -> str:
    classifier_rows = [r for r in plan.rows if r.explainer != OBJECTNESS]
    models = list(dict.fromkeys(r.model for r in classifier_rows))
    explainers = list(dict.fromkeys(r.explainer for r in classifier_rows))
    members = len(models) * (len(explainers) - 1)
    objects = [r.model for r in plan.rows if r.explainer == OBJECTNESS]
    per_device = "one device" if plan.devices == 1 else f"{plan.devices} devices"
    lines = [f"plan: {plan.images:,} images ({plan.images_from}), {len(models)} models x {len(explainers) - 1} "
             f"explainers = {members} members{''.join(f' + object model {o}' for o in objects)}, on {per_device}", "",
             "| model | GFLOPs | explainer | forwards / image | backwards / image | ms / image | device-hours |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for row in plan.rows:
        gflops = f"{plan.gflops[row.model]:.2f}" if row.model in plan.gflops else "–"
        lines.append(f"| {row.model} | {gflops} | {row.explainer} | {row.passes.forwards:g} | "
                     f"{row.passes.backwards:g} | {row.seconds_per_image * 1000:.1f} | "
                     f"{plan.device_hours([row]):,.1f} |")
    forwards = sum(r.passes.forwards for r in plan.rows)
    backwards = sum(r.passes.backwards for r in plan.rows)
    total = plan.device_hours()
    lines.append(f"| **total** | | | **{forwards:g}** | **{backwards:g}** | "
                 f"**{sum(r.seconds_per_image for r in plan.rows) * 1000:.1f}** | **{total:,.1f}** |")
    lines += ["", f"dataset: {forwards * plan.images:,.0f} forward and {backwards * plan.images:,.0f} backward passes; "
              f"{total:,.1f} device-hours = {total / plan.devices:,.1f} h wall on {per_device} "
              "(model passes only: decode, fuse and writes come on top)",
              f"store: full {plan.full_kb:.1f} KB / image = {plan.full_kb * plan.images / 1e6:,.1f} GB; "
              f"labels-only (store.keep_maps: false) {plan.labels_only_kb:.1f} KB / image = "
              f"{plan.labels_only_kb * plan.images / 1e6:,.1f} GB",
              "(passes are counted at the input size: multi-scale CAM's pass at scale s counts s^2)",
              "rates: " + "; ".join(f"{source}: {', '.join(m for m, s in plan.rate_sources.items() if s == source)}"
                                    for source in dict.fromkeys(plan.rate_sources.values()))]
    return "\n".join(lines)
