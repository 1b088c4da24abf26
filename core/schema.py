"""Every config key and value the commands accept, checked before any work starts (pydantic models).

This module is the one place a new config key is declared: add a field to its section with its type,
default and range. A key that no section declares is refused with the closest valid key; a value of
the wrong type or out of range is refused with the key and the rule. Names that only the running
code knows (classifier archs, explainers and their parameters, segmentation models) are checked
against the `context` the command passes to `validate`, so core/ still imports nothing else.
`core.config.load_config` returns the validated model, defaults applied: the stages and the
trainer read their section from it, and the recorded config is its dump. A default is written here
and nowhere else; the defaults of the label pipeline are the embedded default recipe (conf/sample.yaml
restates them with comments, and a test keeps the two equal).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                      ValidationError, ValidationInfo, field_validator, model_validator)

from core.images import DEFAULT_MAX_PIXELS


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the label pipeline (python -m pipeline; conf/sample.yaml, conf/imagenet.yaml) -----------------
class RunSection(Section):
    name: str = "sample"
    root: str = "runs"
    store: str | None = None


class DataSection(Section):
    source: Literal["sample", "imagefolder", "filelist"] = "sample"
    root: str | None = None
    file_list: str | None = None
    min_side: PositiveInt = 16
    max_pixels: PositiveInt = DEFAULT_MAX_PIXELS
    class_map: str | None = None  # lines `folder_name class_id`
    class_ids_by_position: bool = False  # ImageFolder ids = position of the folder (not for part of ImageNet)


class StoreSection(Section):
    map_size: PositiveInt = 224
    shard_size: PositiveInt = 256
    compact: bool = True  # maps at their feature grid / as 8-bit levels (pipeline/maps/stored.py)
    # compact: levels above 0 per explainer's map (others 255); SmoothGrad's noise costs the most bytes
    unit_levels: dict[str, int] = {"smooth_grad": 15}
    keep_maps: bool = True  # false: a labels-only store, each shard's maps deleted once fused (pipeline/fuse/labels_only.py)

    @field_validator("unit_levels")
    @classmethod
    def _levels_of_known_explainers(cls, levels: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        """Levels for an explainer this run does not use are unused; a name no explainer has is a typo."""
        known = _context(info, "explainers")
        for name in levels:
            if known is not None and name not in known:
                raise ValueError(_unknown_explainer(name, known))
        wrong = {name: value for name, value in levels.items() if not 1 <= value <= 255}
        if wrong:
            raise ValueError(f"unit_levels must be 1..255 (levels of a uint8), got {wrong}")
        return levels


class RaySection(Section):
    address: str | None = None
    num_cpus: PositiveInt | None = None
    cpus_per_worker: PositiveFloat = 1
    gpus_per_worker: NonNegativeFloat = 0
    workers: PositiveInt | None = None
    object_store_memory: int = Field(256 * 2**20, ge=80 * 2**20)  # Ray refuses less than ~75 MiB
    temp_dir: str = "/tmp/ray_pssl"
    verbose: bool = False


class ModelSpec(BaseModel):
    """One classifier; keys beyond these are the arch's own (e.g. a known-answer network's width)."""
    model_config = ConfigDict(extra="allow")
    arch: str
    name: str | None = None
    weights: str | None = None
    cam_layer: str | None = None
    input_size: PositiveInt | None = None

    @property
    def display_name(self) -> str:
        """The name the store uses, as pipeline.explain.classifiers.normalize_spec gives it."""
        return self.name or self.arch.rsplit(":", 1)[-1].replace(".", "_")


class ObjectnessSection(Section):
    """A class-agnostic object model run as one more explain member (pipeline/explain/objectness.py has the contract)."""
    name: str = "isnet"                                   # saliency/<name>/objectness
    model: str = "~/.cache/pssl/models/isnet-medium.onnx"  # `make objectness-model` writes it
    input_size: PositiveInt = 512                         # the image is resized to input_size x input_size: 512
                                                          # keeps 1024's dev-set quality at ~1/5 the time
    mean: list[float] = Field([128.0, 128.0, 128.0], min_length=3, max_length=3)  # RGB, pixels 0..255
    std: list[PositiveFloat] = Field([256.0, 256.0, 256.0], min_length=3, max_length=3)
    input: str = "input"                                  # the ONNX input and output names
    output: str = "output"


class ExplainSection(Section):
    seed: int = 0
    batch_size: PositiveInt = 8
    num_classes: PositiveInt = 1000
    runtime: Literal["auto", "eager", "onnxruntime"] = "auto"  # no-grad forwards (pipeline/explain/runtime.py)
    runtime_cache: str | None = None  # exported runtimes, shared by runs; None: the user's cache folder
    reduced_decode: bool = True  # JPEGs decoded at 1/2..1/8 scale, no side below twice the input (bench_decode)
    device_decode: bool = True  # on a GPU worker: a shard's JPEGs decoded on the GPU (pipeline/explain/decode.py)
    channels_last: bool = True
    autocast: Literal["bf16", "fp16"] | None = None
    overwrite: bool = False  # redo finished maps made with other settings (pipeline/explain/map_settings.py)
    models: list[ModelSpec] = Field([ModelSpec(arch=f"efficientnet_lite{i}") for i in range(3)],
                                    min_length=1)  # an entry may be just the arch name
    explainers: dict[str, dict[str, Any] | None] = Field(
        {"grad_cam": {}, "smooth_grad": {"samples": 16, "stdev": 0.15, "batch_size": 4},
         "lime": {"samples": 256, "segments": 50, "batch_size": 1}, "layer_cam": {},
         "multi_scale_cam": {"method": "grad_cam", "scales": [1.0, 0.5, 1.5, 2.0], "flip": True}}, min_length=1)
    objectness: ObjectnessSection | None = ObjectnessSection()  # null: no object map (then fuse.combine: none)

    @field_validator("models", mode="before")
    @classmethod
    def _arch_names_as_specs(cls, models):
        return [{"arch": m} if isinstance(m, str) else m for m in models] if isinstance(models, list) else models

    @field_validator("models")
    @classmethod
    def _known_archs(cls, models: list[ModelSpec], info: ValidationInfo) -> list[ModelSpec]:
        problem = _context(info, "arch_problem")
        for model in models:
            if problem is not None and problem(model.arch):
                raise ValueError(problem(model.arch))
        names = [model.display_name for model in models]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"model names {doubled} appear twice (give each a distinct name:)")
        return models

    @field_validator("explainers")
    @classmethod
    def _known_explainers(cls, explainers: dict, info: ValidationInfo) -> dict:
        known = _context(info, "explainers")
        if known is None:
            return explainers
        for name, params in explainers.items():
            if name not in known:
                raise ValueError(_unknown_explainer(name, known))
            accepted = [p for p in inspect.signature(known[name]).parameters if p not in ("self", "layer")]
            for param in params or {}:
                if param not in accepted:
                    raise ValueError(f"{name}: unknown parameter {param!r}{_closest(param, accepted)}; "
                                     f"valid: {', '.join(accepted)}")
        return explainers


class CrfSection(Section):
    """pipeline.fuse.rules' dense CRF (fuse.refine=crf) (Kraehenbuehl & Koltun 2011)."""
    temperature: PositiveFloat = Field(0.05, description="unary: p_fg = logistic((consensus - tau_fg) / temperature)")
    iterations: PositiveInt = 5
    smooth_xy: PositiveFloat = Field(0.015, description="smoothness kernel width, a fraction of the map side")
    smooth_weight: NonNegativeFloat = 1.0
    appearance_xy: PositiveFloat = Field(0.3, description="appearance kernel width, a fraction of the map side")
    appearance_rgb: PositiveFloat = Field(8.0, description="appearance kernel width in colour (0..255)")
    appearance_weight: NonNegativeFloat = 10.0


class ObjectRuleSection(Section):
    """The object combination rules' settings (pipeline/fuse/object_rules.py says what each one does)."""
    model: str | None = None                          # the object model's maps to use (null: the store's)
    object_threshold: float = Field(0.5, ge=0, le=1)  # objectness at or above: an object pixel
    keep_evidence: float = Field(0.3, ge=0, le=1)     # a region's mean class evidence at or above: the class
    part_evidence: float = Field(0.05, ge=0, le=1)    # a superpixel of a kept region below: dropped
    min_coverage: float = Field(0.3, ge=0, le=1)      # consensus fg share in kept regions below: consensus alone
    segments: NonNegativeInt = 48                     # SLIC superpixels over the map (0: none)
    outside_weight: float = Field(0.5, ge=0, le=1)    # object_unary: pull of class evidence outside objects


class FuseRule(Section):
    """The keys that change the labels (pipeline/fuse/rules.py): recorded in the store with the members
    and compared on a re-run. Rule names are checked against the registries the running code passes."""
    # chosen on the real-photo development set, checked on the known-answer held-out split
    # (docs/label_quality.md, results/label_variants.md)
    fg_threshold: float = Field(0.45, ge=0, le=1)
    bg_threshold: float = Field(0.225, ge=0, le=1)
    weight_by_probability: bool = False
    write_consensus: bool = False
    threshold_rule: str = "fixed"
    otsu_range: list[float] = Field([0.0, 1.0], min_length=2, max_length=2)
    smooth: dict[str, NonNegativeFloat] = {}  # {explainer: Gaussian sigma as a fraction of the side}
    refine: str = "crf"
    crf: CrfSection | None = CrfSection()  # None unless refine=crf: only then is it part of the rule
    combine: str = "object_regions"  # a rule of maps and a class-agnostic objectness map (none: the maps alone)
    objectness: ObjectRuleSection = ObjectRuleSection()  # the combination rules' settings

    @field_validator("smooth", "refine", mode="before")
    @classmethod
    def _null_is_nothing(cls, value, info: ValidationInfo):
        return ({} if info.field_name == "smooth" else "none") if value is None else value

    @field_validator("threshold_rule", "refine", "combine")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        registry = {"threshold_rule": "threshold_rules", "refine": "refinements", "combine": "combinations"}
        known = _context(info, registry[info.field_name])
        choices = list(known or ()) + ([] if info.field_name == "threshold_rule" else ["none"])
        if known is not None and name not in choices:
            raise ValueError(f"unknown rule {name!r}{_closest(name, choices)}; valid: {', '.join(choices)}")
        return name

    @model_validator(mode="after")
    def _ordered(self) -> FuseRule:
        if not self.bg_threshold < self.fg_threshold:
            raise ValueError(f"needs bg_threshold < fg_threshold, got bg={self.bg_threshold}, fg={self.fg_threshold}")
        if not 0 <= self.otsu_range[0] <= self.otsu_range[1] <= 1:
            raise ValueError(f"otsu_range must be [low, high] with 0 <= low <= high <= 1, got {self.otsu_range}")
        if self.refine == "crf" and self.crf is None:
            raise ValueError("refine=crf needs the fuse.crf section")
        if self.refine != "crf":
            self.crf = None
        if self.combine == "object_unary" and self.crf is None:
            raise ValueError("combine=object_unary needs the fuse.crf section (its CRF runs on that unary)")
        return self


class FuseSection(FuseRule):
    models: list[str] | None = None
    explainers: list[str] | None = None
    overwrite: bool = False
    num_workers: PositiveInt | None = None
    shards_per_batch: PositiveInt | None = None

    def rule(self) -> FuseRule:
        """The label-changing part of the section."""
        return FuseRule.model_validate(self.model_dump(include=set(FuseRule.model_fields)))


class PipelineConfig(Section):
    run: RunSection = RunSection()
    data: DataSection = DataSection()
    store: StoreSection = StoreSection()
    ray: RaySection = RaySection()
    explain: ExplainSection = ExplainSection()
    fuse: FuseSection = FuseSection()

    @model_validator(mode="after")
    def _fuse_members_are_explained(self) -> PipelineConfig:
        """fuse.models / fuse.explainers must name what explain makes (else fuse would refuse after explain);
        a config without an explain section fuses a store explained before, which fuse checks itself."""
        if "explain" not in self.model_fields_set:
            return self
        made = {"models": [model.display_name for model in self.explain.models],
                "explainers": list(self.explain.explainers)}
        for key, known in made.items():
            chosen = getattr(self.fuse, key) or []
            unknown = [name for name in chosen if name not in known]
            if unknown:
                raise ValueError(f"fuse.{key}: {unknown} are not in explain.{key} ({known})")
        blurred = [name for name in self.fuse.smooth or {} if name not in made["explainers"]]
        if blurred:
            raise ValueError(f"fuse.smooth: {blurred} are not in explain.explainers ({made['explainers']})")
        return self


# --- training (python -m training; conf/pretrain_*.yaml, conf/finetune_{voc,cityscapes}_*.yaml) -----
class TrainingRun(Section):
    out_dir: str
    resume: str | None = "auto"


class ColorJitter(Section):
    brightness: NonNegativeFloat = 0
    contrast: NonNegativeFloat = 0
    saturation: NonNegativeFloat = 0
    prob: float = Field(0, ge=0, le=1)


class AugmentSection(Section):
    resize_by_short: PositiveInt | None = None
    scale: list[PositiveFloat] | None = Field(None, min_length=2, max_length=2)
    scale_step: PositiveFloat | None = None  # factors low, low + step, ..., high (ResizeStepScaling); None: uniform
    crop: PositiveInt | list[PositiveInt] | None = None  # a side, or [width, height] as PaddleSeg's crop_size
    image_pad: float = 127.5
    flip_prob: float = Field(0, ge=0, le=1)
    color: ColorJitter | None = None
    mean: list[float] = Field(min_length=3, max_length=3)
    std: list[PositiveFloat] = Field(min_length=3, max_length=3)

    @field_validator("crop")
    @classmethod
    def _width_and_height(cls, crop):
        if isinstance(crop, list) and len(crop) != 2:
            raise ValueError(f"crop is one side or [width, height], got {crop}")
        return crop


class SegModelSection(Section):
    name: str
    init: Literal["backbone", "pretrained"] | None = None
    pretrained: str | None = None
    backbone_weights: str | None = None
    variant: Literal["pytorch", "paddleseg"] | None = None  # training.models.VARIANTS; None: from the weights

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str, info: ValidationInfo) -> str:
        known = _context(info, "seg_models")
        if known is not None and name not in known:
            raise ValueError(f"unknown model {name!r}{_closest(name, known)}; valid names: {', '.join(sorted(known))}")
        return name


class OhemSection(Section):
    """Online hard example mining per head (training/loss.py): only pixels whose true-class probability is
    below `thresh` count, the threshold raised where fewer than about `min_kept` of one process's batch are
    below it (PaddleSeg's defaults)."""
    thresh: float = Field(0.7, gt=0, le=1)
    min_kept: NonNegativeInt = 10000


class LossSection(Section):
    background_alpha: NonNegativeFloat | None = None
    head_weights: list[NonNegativeFloat] | None = None
    detail_weight: NonNegativeFloat = 1.0
    ohem: OhemSection | None = None  # None: every labelled pixel counts


class TrainSection(Section):
    epochs: PositiveInt | None = None
    iterations: PositiveInt | None = None
    batch_size: PositiveInt
    accumulate: PositiveInt = 1
    lr: PositiveFloat
    backbone_lr_mult: NonNegativeFloat = 1.0
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: NonNegativeFloat = 0
    schedule: Literal["poly", "constant"] = "poly"
    power: PositiveFloat = 0.9
    warmup_steps: NonNegativeInt = 0
    warmup_start_factor: float = Field(0.1, gt=0, le=1)
    amp: bool = True
    workers: NonNegativeInt = 0
    seed: int = 0
    checkpoint_every_steps: NonNegativeInt = 0
    checkpoint_every_epochs: NonNegativeInt = 1
    log_every_steps: PositiveInt = 50
    image_every_steps: NonNegativeInt = 0
    max_steps: PositiveInt | None = None


class PretrainData(Section):
    format: Literal["store", "paddleseg"] = "store"
    store: str | None = None
    root: str | None = None
    pssl_root: str | None = None
    imagenet_root: str | None = None
    list_file: str = "train.txt"
    check_files: bool = True
    min_target_prob: float = Field(0.0, ge=0, le=1)  # store: leave out images the classifiers barely see (0: keep all)


class PretrainConfig(Section):
    run: TrainingRun
    num_classes: int = Field(ge=2)
    ignore_index: NonNegativeInt
    data: PretrainData
    augment: AugmentSection
    model: SegModelSection
    loss: LossSection = LossSection()
    train: TrainSection

    @model_validator(mode="after")
    def _counts_epochs(self) -> PretrainConfig:
        if self.train.epochs is None or self.train.iterations is not None:
            raise ValueError("train: pre-training counts train.epochs (and no train.iterations)")
        if 0 <= self.ignore_index < self.num_classes:
            raise ValueError(f"ignore_index: {self.ignore_index} is a real class id with num_classes="
                             f"{self.num_classes}; use {self.num_classes} (the reference's choice)")
        return self


class VocData(Section):
    root: str | None = None
    train_split: str = "train_aug"
    train_labels: str = "SegmentationClassAug"
    val_split: str = "val"
    val_labels: str = "SegmentationClass"
    class_names: list[str] | None = None


class EvalMode(Section):
    name: str
    scales: list[PositiveFloat] = Field(min_length=1)
    flip: bool = False


class EvalSection(Section):
    checkpoint: str | None = None
    modes: list[EvalMode] = Field(min_length=1)
    average: Literal["softmax", "logits"] = "softmax"  # what a mode's views average: PaddleSeg <= 2.7 / 2.8
    size_divisor: PositiveInt = 32
    num_samples: NonNegativeInt = 8
    workers: NonNegativeInt = 0
    progress_every: NonNegativeInt = 200  # 0 = no progress lines


class FinetuneConfig(Section):
    run: TrainingRun
    data: VocData
    augment: AugmentSection
    model: SegModelSection
    loss: LossSection = LossSection()
    train: TrainSection
    eval: EvalSection

    @model_validator(mode="after")
    def _counts_iterations(self) -> FinetuneConfig:
        if self.train.iterations is None or self.train.epochs is not None:
            raise ValueError("train: fine-tuning counts train.iterations (the reference's 40k on VOC, 160k on "
                             "Cityscapes), not train.epochs")
        return self


class CityscapesData(Section):
    root: str | None = None
    train_split: str = "train"  # leftImg8bit/<split>/<city>/*_leftImg8bit.png
    val_split: str = "val"
    labels: Literal["auto", "labelTrainIds", "labelIds"] = "auto"  # auto: labelTrainIds if present, else labelIds


class CityscapesFinetuneConfig(FinetuneConfig):
    data: CityscapesData


# --- the benchmark runner (python -m benchmarks.run_all; conf/bench.yaml) --------------------------
class BenchEntry(Section):
    name: str
    args: list[str] = Field(min_length=1)  # after `python`
    output: str  # the markdown it writes


class BenchConfig(Section):
    report: str
    logs: str
    benchmarks: list[BenchEntry] = Field(min_length=1)


# --- the known-answer world (benchmarks/known_answer; conf/known_answer*.yaml) ----------------------
def _pair():
    """An inclusive [low, high] range."""
    return Field(min_length=2, max_length=2)



class WorldSection(Section):
    instances: list[PositiveInt] = _pair()
    object_radius: list[PositiveFloat] = _pair()
    edge_margin: NonNegativeFloat
    aspect: list[PositiveFloat] = _pair()
    colour_jitter: NonNegativeFloat
    clutter: list[NonNegativeInt] = _pair()
    distractor_radius: list[PositiveFloat] = _pair()
    occluders: list[NonNegativeInt] = _pair()
    occluder_attempts: NonNegativeInt
    min_visible: float = Field(ge=0, le=1)
    background_mottle: NonNegativeFloat
    background_pattern: NonNegativeFloat
    background_lines: list[NonNegativeInt] = _pair()
    noise_std: NonNegativeFloat


class Splits(Section):
    train: NonNegativeInt
    val: NonNegativeInt


class SegmentationImages(Splits):
    aug_extra: NonNegativeInt = 0


class ClassificationSection(Section):
    image_size: PositiveInt
    per_class: Splits


class SegmentationSection(Section):
    image_size: PositiveInt
    images: SegmentationImages
    classes_per_image: list[PositiveInt] = _pair()
    ignore_border: NonNegativeInt
    jpeg_quality: int = Field(ge=1, le=100)


class KnownAnswerClassifier(BaseModel):
    """One classifier of the world; its size keys depend on the family."""
    model_config = ConfigDict(extra="allow")
    family: Literal["vgg", "resnet", "convmixer"]


class ClassifiersSection(Section):
    output: str
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat
    weight_decay: NonNegativeFloat = 0
    label_smoothing: float = Field(0, ge=0, lt=1)
    models: dict[str, KnownAnswerClassifier] = Field(min_length=1)


class KnownAnswerConfig(Section):
    seed: int = 0
    root: str
    classes: list[str] = Field(min_length=2)
    world: WorldSection
    classification: ClassificationSection
    segmentation: SegmentationSection
    classifiers: ClassifiersSection


class ReportWorld(Section):
    config: str
    set: dict[str, Any] = {}  # nested keys of the world config to change


class LabelSubset(Section):
    split: Literal["train", "val"]
    per_class: PositiveInt


class ThresholdGrid(Section):
    start: float = Field(ge=0, le=1)
    stop: float = Field(ge=0, le=1)
    step: PositiveFloat


class ReportLabels(Section):
    tuning: LabelSubset
    heldout: LabelSubset
    thresholds: ThresholdGrid
    bg_fraction: float = Field(ge=0, lt=1)
    min_members: PositiveInt
    overlay_images: NonNegativeInt
    pipeline: dict[str, Any]  # a generate-labels config without its paths and models: checked when it runs


class ReportTask(Section):
    config: str
    threads: PositiveInt | None = None
    set: dict[str, Any] = {}  # nested keys of that training config, checked by its own schema when it runs


class ReportFinetune(Section):
    pssl_config: str
    baseline_config: str
    threads: PositiveInt | None = None
    set: dict[str, Any] = {}


class ReportDownstream(Section):
    seeds: list[int] = Field(min_length=1)
    pretrain: ReportTask
    finetune: ReportFinetune


class KnownAnswerReportConfig(Section):
    world: ReportWorld
    work_dir: str
    out_dir: str
    labels: ReportLabels
    downstream: ReportDownstream
    quick: dict[str, Any] = {}  # --quick: {dotted.key: value}


# --- the label variants benchmark (python -m benchmarks.label_variants; conf/label_variants.yaml) --
class VariantsRealWorld(Section):
    store: str
    ground_truth: str
    encoding: str


class VariantsKnownAnswer(Section):
    report_config: str
    work_dir: str
    explainers: dict[str, dict[str, Any] | None] = Field(min_length=1)


class LabelVariant(Section):
    name: str
    fuse: FuseSection
    reliability: bool = False


class LabelVariantsConfig(Section):
    real: VariantsRealWorld
    known_answer: VariantsKnownAnswer
    member_thresholds: list[float] = Field(min_length=1)
    out: str
    reliability_plot: str
    variants: list[LabelVariant] = Field(min_length=1)


# --- checking --------------------------------------------------------------------------------------
def _context(info: ValidationInfo, key: str):
    return (info.context or {}).get(key)


def _unknown_explainer(name: str, known) -> str:
    return f"unknown explainer {name!r}{_closest(name, known)}; valid: {', '.join(sorted(known))}"


def _closest(word: str, choices) -> str:
    match = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def valid_keys(schema: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key a schema accepts (sections and their fields)."""
    keys = []
    for name, field in schema.model_fields.items():
        keys.append(prefix + name)
        for candidate in _models_in(field.annotation):
            keys += valid_keys(candidate, f"{prefix}{name}.")
    return keys


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def problems(config: dict, schema: type[BaseModel], context: dict | None = None) -> list[tuple[str, str]]:
    """[(dotted key, what is wrong)] for every key and value the schema refuses; [] when it is valid."""
    try:
        schema.model_validate(config, context=context or {})
    except ValidationError as error:
        keys = valid_keys(schema)
        found = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"] if _is_key(part))
            if item["type"] == "extra_forbidden":
                found.append((key, "unknown key" + _closest_key(key, keys)))
            else:
                what = item["msg"].removeprefix("Value error, ")
                if not key and ": " in what:  # a whole-config rule names its key first
                    key, what = what.split(": ", 1)
                found.append((key, what))
        return list(dict.fromkeys(found))
    return []


def _is_key(part) -> bool:
    """Config keys and list positions, not the union-branch tags pydantic puts in an error's location."""
    return isinstance(part, int) or (part.islower() and "[" not in part and part not in ("str", "int", "float",
                                                                                         "bool", "list", "dict"))


def _closest_key(key: str, keys: list[str]) -> str:
    parent = key.rpartition(".")[0]
    siblings = [k for k in keys if k.rpartition(".")[0] == parent]
    match = difflib.get_close_matches(key, siblings, n=1, cutoff=0.6) or difflib.get_close_matches(key, keys, n=1)
    return f"; did you mean {match[0]}?" if match else ""
