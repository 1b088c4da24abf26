"""Explain stage: Ray actors, each holding one loaded classifier, explain whole shards of images.

Where every class is known, one pass decodes each image once, writes its scores (target probability,
top-1) and runs every explainer on the class. Where some class is unknown, a `classify` pass first
records every model's probabilities, the ensemble's top-1 becomes the target, then `explain` runs.
Maps go to `saliency/<model>/<explainer>` (map / its max-abs, float16) plus the per-image scale
and the q99 that fusion divides by (computed once here, so re-fusing with other thresholds is cheap).
A class-agnostic object model (`explain.objectness`, pipeline/explain/objectness.py) is one more member: its map
of a shard is made in the same call as the first classifier's work on that shard, from the same
decoded images, and flagged under its own name; a shard whose classifiers are all done gets a call
of its own.
One task writes one model's shard of every array, so no two writers share a shard file; the
driver sets a shard's progress flag only after the task has returned, so a re-run redoes exactly
the unfinished shards. A dead actor's shards go to the other actors (`run_on_pool`).
"""
from __future__ import annotations

import inspect
import threading
from pathlib import Path

import numpy as np
import ray
import torch
import torch.nn.functional as F
import zarr

from core.config import ConfigError, recorded, typed
from core.images import BadImage, load_rgb
from core.schema import PipelineConfig
from core.store import (CLASSIFY_STAGE, ENCODING_FULL, ENCODING_GRID, ENCODING_UNIT, EXPLAIN_STAGE, INDEX_CLASS_ID,
                        INDEX_KEY, INDEX_PATH, INDEX_STAGE, INDEX_STATUS, INDEX_TARGET, OBJECTNESS, OBJECTNESS_ATTR,
                        STATUS_OK, UNIT_LEVELS,
                        UNKNOWN_CLASS, StoreError, clear_labels, clear_model, data_root, done_shards, map_encoding,
                        map_size, mark_bad, mark_done, n_images, open_store, prediction_name, q99_name, read_flags,
                        record_config, require_array, saliency_name, scale_name, score_name, shard_count, shard_size,
                        shard_slice, top1_name, write_layout)
from core.store_check import covered_names, list_arrays, report_redone, unflag_damaged
from explainers import EXPLAINERS, create_explainer, upsample_grid
from pipeline import disk_space
from pipeline.explain import map_settings
from pipeline.explain import preflight
from pipeline.explain.classifiers import load_classifier, model_specs
from pipeline.explain.decode import decode_batch
from pipeline.fuse.kernel import q99_of_maps
from pipeline.explain.objectness import ObjectnessModel, model_file, resolved_settings
from pipeline.cluster.session import cluster_cpus
from pipeline.explain.runtime import RunOptions, no_grad_forward, split_network
from pipeline.maps.stored import create_map_array, encode, to_stored_maps
from pipeline.cluster.worker_errors import stage_error


def resize_batch(rgbs: list, size: int, device: torch.device) -> torch.Tensor:
    """Whole images (not crops) resized to size x size, RGB in [0, 1], so a map covers the whole image.

    Each image is an HxWx3 uint8 array, or a uint8 [3, H, W] tensor decoded on the device (resized there)."""
    batch = [F.interpolate((rgb if isinstance(rgb, torch.Tensor) else torch.from_numpy(rgb).permute(2, 0, 1))[None]
                           .float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
             for rgb in rgbs]
    return (torch.cat(batch) / 255.0).clamp_(0, 1).to(device)


def _decoded(path: Path, at_least: int | None) -> np.ndarray | BadImage:
    try:
        return load_rgb(path, min_side=1, draft=at_least)
    except BadImage as error:
        return error


def build_explainers(layer, specs: dict, seed: int) -> dict:
    """Instantiate each configured explainer; Grad-CAM-like ones get `layer` (the CAM layer, or a split network's)."""
    built = {}
    for name, params in specs.items():
        params = {"seed": seed, **(params or {})}
        if name in EXPLAINERS and "layer" in inspect.signature(EXPLAINERS[name]).parameters:
            params["layer"] = layer
        try:
            built[name] = create_explainer(name, **params)
        except (KeyError, TypeError) as error:
            raise ConfigError(f"explain.explainers: {error.args[0]}") from None
    return built


class ModelWorker:
    """A Ray actor holding one loaded classifier (and its explainers) at a time.

    Work arrives sorted by model, so a worker loads each model once per pass; keeping the process
    across models and passes saves a Python + torch start-up per model (seconds each on 2 cores).
    Each call handles one whole shard of the store and is its shard files' only writer.
    """

    def __init__(self, store_path: str, model_specs: dict, explainer_specs: dict, batch_size: int, seed: int,
                 num_classes: int, options: RunOptions, objectness: dict | None = None):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.group = open_store(store_path)
        self.root = Path(data_root(self.group))
        self.k, self.map_size = shard_size(self.group), map_size(self.group)
        self.n = n_images(self.group)
        self.model_specs, self.explainer_specs = model_specs, explainer_specs
        self.batch_size, self.seed, self.num_classes = batch_size, seed, num_classes
        self.options, self.runtime_cache = options, options.cache_dir()
        self.classifier, self.explainers, self.forward, self.split = None, {}, None, None
        self.objectness_settings, self.object_model = objectness, None
        self.model_lock = threading.Lock()  # two calls in flight (max_concurrency=2): one computes, one decodes
        self.reduced_decode, self.input_sizes = options.reduced_decode, {}

    def _use(self, model: str):
        if self.classifier is None or self.classifier.name != model:
            self.classifier = None  # release the previous model before loading the next
            self.classifier = load_classifier(self.model_specs[model], self.device)
            self.forward, _ = no_grad_forward(self.classifier, self.options.runtime, self.runtime_cache, self.device)
            self.split = split_network(self.classifier, self.options.runtime, self.runtime_cache, self.device)
            layer = self.split.layer if self.split is not None else self.classifier.cam_layer
            self.explainers = build_explainers(layer, self.explainer_specs, self.seed)
            self.options.prepare(self.classifier.net)
        return self.classifier

    def _decode_floor(self, model: str) -> int | None:
        """No JPEG side is decoded below twice `model`'s input (explain.reduced_decode): a 2048 x 1536 photo then
        decodes at 1024 x 768, 5x faster, its input within 0.01 of a full decode, while decoding down to the input
        itself changed 1-2 % of Grad-CAM's label pixels (results/bench_decode.md). The model is loaded (under the
        lock) the first time, so the floor never depends on scheduling."""
        if not self.reduced_decode:
            return None
        if self.objectness_settings:  # the object model sees the same decoded images
            floor = 2 * int(self.objectness_settings["input_size"])
            return floor if model is None else max(floor, self._decode_floor_of(model))
        return self._decode_floor_of(model)

    def _decode_floor_of(self, model: str) -> int:
        if model not in self.input_sizes:
            with self.model_lock:
                self.input_sizes[model] = self._use(model).input_size
        return 2 * self.input_sizes[model]

    def _decode(self, shard: int, at_least: int | None = None) -> tuple[slice, np.ndarray, list[np.ndarray],
                                                                       list[tuple[int, str]]]:
        """The shard's rows, its ok rows, their decoded images and the (row, reason) of images lost since indexing.

        No model is needed, so this runs outside the model lock while the other in-flight call computes
        (the next shard is decoded meanwhile). An image that vanished or broke since indexing is left
        out (its maps stay zero) and returned for the driver to record as bad.
        """
        selection = shard_slice(shard, self.k, self.n)
        paths = self.group[INDEX_PATH][selection]
        ok, rgbs, lost = [], [], []
        rows = np.flatnonzero(self.group[INDEX_STATUS][selection] == STATUS_OK)
        if self.device.type == "cuda" and self.options.device_decode:  # nvJPEG, the whole shard at once
            decoded = decode_batch([self.root / paths[i] for i in rows], self.device)
        else:
            decoded = [_decoded(self.root / paths[i], at_least) for i in rows]
        for i, image in zip(rows, decoded):
            if isinstance(image, BadImage):
                lost.append((selection.start + int(i), f"since indexing: {image}"))
            else:
                rgbs.append(image)
                ok.append(i)
        return selection, np.array(ok, int), rgbs, lost

    def _batches(self, rgbs: list[np.ndarray]) -> list[tuple[int, torch.Tensor]]:
        """The decoded images resized to the loaded model's input and batched."""
        size = self.classifier.input_size
        return [(start, resize_batch(rgbs[start:start + self.batch_size], size, self.device))
                for start in range(0, len(rgbs), self.batch_size)]

    @torch.no_grad()  # not inference_mode: a model loaded here is reused by explainers that need autograd
    def _score(self, model: str, selection: slice, ok: np.ndarray, batches: list) -> None:
        """Write top-1 and target probability; full probabilities where the class is unknown."""
        count = selection.stop - selection.start
        probs = np.zeros((count, self.num_classes), np.float32)
        for start, batch in batches:
            with self.options.precision(self.device):
                logits = self.forward(batch)
            if logits.shape[1] != self.num_classes:
                raise ConfigError(f"{model} predicts {logits.shape[1]} classes but explain.num_classes is "
                                  f"{self.num_classes}")
            probs[ok[start:start + len(logits)]] = logits.softmax(dim=1).float().cpu().numpy()
        class_ids = self.group[INDEX_CLASS_ID][selection]
        known = class_ids != UNKNOWN_CLASS
        target_prob = np.where(known, probs[np.arange(count), np.where(known, class_ids, 0)], 0)
        self.group[score_name(model)][selection] = target_prob.astype(np.float16)
        self.group[top1_name(model)][selection] = np.where(np.isin(np.arange(count), ok), probs.argmax(axis=1), -1).astype(np.int16)
        if prediction_name(model) in self.group:
            probs[known] = 0
            self.group[prediction_name(model)][selection] = probs.astype(np.float16)

    def _objectness(self, selection: slice, ok: np.ndarray, rgbs: list[np.ndarray]) -> None:
        """Write the shard's object maps: 8-bit levels of the map itself (q99 1: values are already in [0, 1])."""
        if self.object_model is None:
            self.object_model = ObjectnessModel(self.objectness_settings)
        name = self.object_model.name
        count = selection.stop - selection.start
        maps = np.zeros((count, self.map_size, self.map_size), np.float16)
        if len(ok):
            maps[ok] = self.object_model.maps(rgbs, self.map_size)
        array = self.group[saliency_name(name, OBJECTNESS)]
        ones = np.ones(count, np.float32)
        array[selection] = encode(array, maps, None, ones)
        self.group[scale_name(name, OBJECTNESS)][selection] = ones
        self.group[q99_name(name, OBJECTNESS)][selection] = ones

    def classify(self, model: str | None, shard: int, objectness: bool = False) -> list[tuple[int, str]]:
        """Write the shard's scores (and, with `objectness`, its object maps from the same decoded images);
        returns the (row, reason) of images lost since indexing. `model` None: the object maps alone."""
        selection, ok, rgbs, lost = self._decode(shard, self._decode_floor(model))
        with self.model_lock:
            if model is not None:
                self._use(model)
                self._score(model, selection, ok, self._batches(rgbs))
            if objectness:
                self._objectness(selection, ok, rgbs)
        return lost

    def explain(self, model: str | None, shard: int, score: bool = False, objectness: bool = False) -> list[tuple[int, str]]:
        """Run every explainer on the shard's targets; with `score`, also write the scores, with `objectness` the
        object maps (one decode for all). `model` None: the object maps alone."""
        selection, ok, rgbs, lost = self._decode(shard, self._decode_floor(model))
        with self.model_lock:
            if model is not None:
                self._explain(model, selection, ok, rgbs, score)
            if objectness:
                self._objectness(selection, ok, rgbs)
        return lost

    def _explain(self, model: str, selection: slice, ok: np.ndarray, rgbs: list[np.ndarray], score: bool) -> None:
        net = self._use(model).net
        batches = self._batches(rgbs)
        if score:
            self._score(model, selection, ok, batches)
        count = selection.stop - selection.start
        targets = self.group[INDEX_TARGET][selection]
        size = self.map_size
        for explainer_name, explainer in self.explainers.items():
            array = self.group[saliency_name(model, explainer_name)]
            keep_grid = map_encoding(array) == ENCODING_GRID
            maps = np.zeros((count, size, size), np.float16)
            grids = np.zeros((count, *array.shape[1:]), np.float32) if keep_grid else None
            scales = np.zeros(count, np.float32)
            for start, batch in batches:
                rows = ok[start:start + len(batch)]
                target = torch.as_tensor(targets[rows], dtype=torch.long, device=self.device)
                runner, images = self._runner(explainer, net, batch)
                with self.options.precision(self.device):
                    if keep_grid:  # the same upsampling explain() applies, with the grid kept for the store
                        grid = explainer.explain_grid(runner, images, target)
                        grids[rows] = grid.cpu().numpy()
                        raw = upsample_grid(grid, tuple(images.shape[-2:]))
                    else:
                        raw = explainer.explain(runner, images, target)
                maps[rows], scales[rows] = to_stored_maps(raw, size)
            q99 = q99_of_maps(maps)
            array[selection] = encode(array, maps, grids, q99)
            self.group[scale_name(model, explainer_name)][selection] = scales
            self.group[q99_name(model, explainer_name)][selection] = q99

    def _runner(self, explainer, net: torch.nn.Module, batch: torch.Tensor) -> tuple:
        """(what the explainer calls, the images it gets): the split network for the CAM explainers where there is
        one, the eager network for other gradients, the fastest no-grad forward for the rest."""
        if self.split is not None and explainer.explains_layer:
            return self.split, batch
        if explainer.needs_gradients:
            return net, self.options.images(batch)
        return self.forward, batch

    def classify_and_explain(self, model: str | None, shard: int, objectness: bool = False) -> list[tuple[int, str]]:
        return self.explain(model, shard, score=True, objectness=objectness)


def run_on_pool(actors: list, method: str, work: list[tuple], on_done, in_flight_per_actor: int = 2,
                replace=None, attempts: int = 3) -> list:
    """Keep every actor busy with work items ((model, shard, ...) arguments of `method`), calling
    on_done(*item, result) as each returns; returns [(*item, error)] that failed for good.

    A dead actor (its process or its node lost) is dropped and its items go back in the queue for the
    others, up to `attempts` times each: Ray restarting it instead would wait for resources a lost node
    took with it while the survivors hold theirs, forever. `replace()` starts a new actor only when none
    is left.
    """
    queue, running, failures, tries = list(work), {}, [], {}
    live = list(actors)

    def submit(actor):
        if queue:
            item = queue.pop(0)
            running[getattr(actor, method).remote(*item)] = (item, actor)

    for actor in live:
        for _ in range(in_flight_per_actor):
            submit(actor)
    while running:
        (ref,), _ = ray.wait(list(running), num_returns=1)
        item, actor = running.pop(ref)
        try:
            result = ray.get(ref)
            on_done(*item, result)
        except ray.exceptions.RayActorError as error:
            tries[item] = tries.get(item, 0) + 1
            if tries[item] >= attempts:
                failures.append((*item, error))
            else:
                queue.insert(0, item)
            if actor in live:
                live.remove(actor)
            if not live and replace is not None and queue:
                live.append(replace())
                for _ in range(in_flight_per_actor):
                    submit(live[-1])
            for other in live:  # the requeued items go to whoever has room
                while queue and sum(a is other for _, a in running.values()) < in_flight_per_actor:
                    submit(other)
            continue
        except ray.exceptions.RayError as error:
            failures.append((*item, error))
        if actor in live:
            submit(actor)
    return failures


def run(config: PipelineConfig | dict, store_path: Path, progress) -> zarr.Group:
    config = typed(config, PipelineConfig)
    settings = config.explain
    group = open_store(store_path)
    specs = {spec["name"]: spec for spec in model_specs(settings)}
    explainer_specs = settings.explainers
    num_classes = settings.num_classes
    options = RunOptions(settings.runtime, settings.channels_last, settings.autocast, settings.runtime_cache,
                         settings.reduced_decode, settings.device_decode)
    objectness = resolved_settings(settings.objectness)
    object_name = objectness["name"] if objectness else None
    if object_name in specs:
        raise ConfigError(f"explain.objectness.name {object_name!r} is also a model's name: give it another")
    if objectness:
        model_file(objectness)
    n, k = n_images(group), shard_size(group)
    n_shards = shard_count(n, k)
    if not read_flags(group, INDEX_STAGE, INDEX_KEY, n_shards).all():
        raise StoreError(f"{store_path} is not fully indexed yet: run the index stage first")
    redo = map_settings.check_accepted(config, group)
    unexplained = k * sum(n_shards if model in redo else int((~read_flags(group, EXPLAIN_STAGE, model, n_shards)).sum())
                          for model in specs)
    disk_space.check(store_path.parent, disk_space.map_bytes(min(unexplained, n * len(specs)), len(explainer_specs),
                                                             map_size(group)), EXPLAIN_STAGE)
    for model in redo:  # explain.overwrite=true: these maps, and the labels made from them, are made again
        clear_model(group, model)
    if redo:
        clear_labels(group)
    write_layout(group, models=list(specs), explainers=list(explainer_specs),
                 map_settings=map_settings.map_settings(config), **{OBJECTNESS_ATTR: object_name})
    status = group[INDEX_STATUS][:]
    unknown = bool(np.any((group[INDEX_CLASS_ID][:] == UNKNOWN_CLASS) & (status == STATUS_OK)))
    levels = config.store.unit_levels if config.store.compact else None
    for model in specs:
        _require_model_arrays(group, specs[model], list(explainer_specs), n, levels, unknown, num_classes)
    if object_name:
        _require_objectness_arrays(group, object_name, n)
    record_config(group, store_path, recorded(config))
    images_per_shard = np.bincount(np.arange(n) // k, weights=status == STATUS_OK, minlength=n_shards).astype(int)
    # Known classes need no ensemble vote: one pass decodes each image once and writes scores and maps.
    # Unknown ones need every model's probabilities first: classify all, resolve targets, then explain.
    passes = ([(CLASSIFY_STAGE, "classify"), (EXPLAIN_STAGE, "explain")] if unknown
              else [(EXPLAIN_STAGE, "classify_and_explain")])
    for model in [*specs, *([object_name] if object_name else [])]:
        _redo_damaged(group, store_path, model, k, n)
    if not unknown:
        _resolve_targets(group, list(specs), n, k)
    pending = {stage: [(model, shard, False) for model in specs
                       for shard in np.flatnonzero(~done_shards(group, stage, model, n_shards)).tolist()]
               for stage, _ in passes}
    if object_name:
        first = passes[0][0]
        pending[first] = _with_objectness(pending[first], done_shards(group, EXPLAIN_STAGE, object_name, n_shards))
    actors = _start_actors(config, store_path, specs, explainer_specs, num_classes, options,
                           max(map(len, pending.values())), objectness)
    preflight.wait_for_workers(actors, config, EXPLAIN_STAGE)

    def replace():
        actors.extend(_start_actors(config, store_path, specs, explainer_specs, num_classes, options, 1, objectness))
        preflight.wait_for_workers(actors[-1:], config, EXPLAIN_STAGE)
        return actors[-1]

    lost: dict[int, str] = {}

    def on_done(stage):
        def mark(model, shard, objectness_too, lost_images):
            if model is not None:
                mark_done(group, stage, model, shard)
            if objectness_too:
                mark_done(group, EXPLAIN_STAGE, object_name, shard)
            lost.update(lost_images)
            if model is not None:
                progress.advance(int(images_per_shard[shard]), model)
            if objectness_too:
                progress.advance(int(images_per_shard[shard]), object_name)
        return mark

    try:
        failures = []
        for stage, method in passes:
            total = int(images_per_shard.sum())
            members = [*specs, *([object_name] if object_name and stage == passes[0][0] else [])]
            progress.begin(stage, total, models=members,
                           done={m: total - sum(int(images_per_shard[s]) for pm, s, po in pending[stage]
                                                if pm == m or (po and m == object_name))
                                 for m in members})
            failures = run_on_pool(actors, method, pending[stage], on_done(stage), replace=replace)
            mark_bad(group, lost)  # images that vanished or broke since indexing
            if failures:
                break
            if stage == CLASSIFY_STAGE:
                _resolve_targets(group, list(specs), n, k)
    finally:
        for actor in actors:
            ray.kill(actor)
    if failures:
        raise stage_error(EXPLAIN_STAGE, store_path, [(model or object_name, shard, error)
                                                      for model, shard, _, error in failures])
    return group


def _with_objectness(items: list[tuple], objectness_done: np.ndarray) -> list[tuple]:
    """The first pass's (model, shard, objectness) items with the object maps of every unfinished shard
    added to that shard's first item (one decode), or as an item of their own where no model works on it."""
    items, missing = list(items), set(np.flatnonzero(~objectness_done).tolist())
    for position, (model, shard, _) in enumerate(items):
        if shard in missing:
            items[position] = (model, shard, True)
            missing.discard(shard)
    return items + [(None, shard, True) for shard in sorted(missing)]


def _require_objectness_arrays(group: zarr.Group, name: str, n: int) -> None:
    """The object model's map array, 8-bit levels of the map (always compact: the map is its own unit scale)."""
    if saliency_name(name, OBJECTNESS) not in group:
        create_map_array(group, name, OBJECTNESS, n, ENCODING_UNIT, smooth=True)
    require_array(group, scale_name(name, OBJECTNESS), (n,), np.float32)
    require_array(group, q99_name(name, OBJECTNESS), (n,), np.float32, fill_value=np.nan)


def _redo_damaged(group: zarr.Group, store_path: Path, model: str, k: int, n: int) -> None:
    """A flagged shard whose maps, scores or predictions are missing or damaged is classified and explained
    again (index/target is left out: it is resolved afresh on every run)."""
    flags = [(CLASSIFY_STAGE, model), (EXPLAIN_STAGE, model)]
    arrays = list_arrays(group)
    names = sorted({name for stage, key in flags for name in covered_names(arrays, stage, key)} - {INDEX_TARGET})
    report_redone(f"{EXPLAIN_STAGE} {model}", unflag_damaged(store_path, group, flags, names, k, n))


def _start_actors(config: PipelineConfig, store_path: Path, specs: dict, explainer_specs: dict, num_classes: int,
                  options: RunOptions, pending: int, objectness: dict | None) -> list:
    if not pending:
        return []
    cpus, gpus = config.ray.cpus_per_worker, config.ray.gpus_per_worker
    workers = config.ray.workers or max(1, int(cluster_cpus() // cpus))
    # no restarts: run_on_pool hands a dead worker's shards to the others (see there why)
    worker_class = ray.remote(ModelWorker).options(num_cpus=cpus, num_gpus=gpus, max_restarts=0,
                                                   max_concurrency=2)
    arguments = (str(store_path), specs, explainer_specs, config.explain.batch_size, config.explain.seed, num_classes,
                 options, objectness)
    return [worker_class.remote(*arguments) for _ in range(min(int(workers), pending))]


def _require_model_arrays(group: zarr.Group, spec: dict, explainers: list[str], n: int, levels: dict | None,
                          unknown: bool, classes: int) -> None:
    """The model's arrays; `levels` ({explainer: unit levels}) None keeps every map whole (store.compact=false)."""
    model = spec["name"]
    for explainer in explainers:
        kind = EXPLAINERS.get(explainer)
        if saliency_name(model, explainer) in group:
            pass  # keeps the encoding it was started with
        elif levels is None:
            create_map_array(group, model, explainer, n, ENCODING_FULL)
        elif getattr(kind, "feature_grid", False):
            grid, input_size = _feature_grid(spec)
            create_map_array(group, model, explainer, n, ENCODING_GRID, grid, input_size)
        else:
            create_map_array(group, model, explainer, n, ENCODING_UNIT, levels=levels.get(explainer, UNIT_LEVELS),
                             smooth=getattr(kind, "smooth_maps", False))
        require_array(group, scale_name(model, explainer), (n,), np.float32)
        require_array(group, q99_name(model, explainer), (n,), np.float32, fill_value=np.nan)
    require_array(group, score_name(model), (n,), np.float16)
    require_array(group, top1_name(model), (n,), np.int16, fill_value=-1)
    if unknown:
        require_array(group, prediction_name(model), (n, classes), np.float16, (classes,))


def _feature_grid(spec: dict) -> tuple[tuple[int, int], int]:
    """(h, w) of the classifier's CAM layer output at its input size, and that input size."""
    classifier = load_classifier(spec)
    shapes = []
    handle = classifier.cam_layer.register_forward_hook(lambda module, inputs, output: shapes.append(output.shape))
    with torch.inference_mode():
        classifier.net(torch.zeros(1, 3, classifier.input_size, classifier.input_size))
    handle.remove()
    return tuple(int(x) for x in shapes[-1][-2:]), classifier.input_size


def _resolve_targets(group: zarr.Group, models: list[str], n: int, k: int) -> None:
    """Target = the image's class, or the ensemble's top-1 (mean probability) where it is unknown."""
    for shard in range(shard_count(n, k)):
        selection = shard_slice(shard, k, n)
        class_ids = group[INDEX_CLASS_ID][selection].astype(np.int64)
        unknown = np.flatnonzero((class_ids == UNKNOWN_CLASS) & (group[INDEX_STATUS][selection] == STATUS_OK))
        targets = class_ids.copy()
        if unknown.size:
            probs = np.stack([group[prediction_name(m)][selection][unknown].astype(np.float32) for m in models])
            targets[unknown] = probs.mean(axis=0).argmax(axis=1)
            for model, model_probs in zip(models, probs):
                scores = group[score_name(model)][selection]
                scores[unknown] = model_probs[np.arange(unknown.size), targets[unknown]]
                group[score_name(model)][selection] = scores
        group[INDEX_TARGET][selection] = targets.astype(np.int16)
