"""`python -m pipeline <command>`: the label pipeline's verbs. Errors a user can fix print as one line (--debug: traceback)."""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

from core.config import load_config, typed
from core.errors import is_disk_full, run_cli
from core.schema import PipelineConfig, StoreSection
from core.store import EXPLAIN_STAGE, FUSE_STAGE, INDEX_STAGE, fuse_settings, is_indexed, open_store
from core.store_lock import store_lock
from core.target_probability import LOW_TARGET_PROBABILITY
from pipeline.progress import StageProgress
from pipeline.index.sources import enumerate_images

def config_context() -> dict:
    """The names only the running code knows, for core.schema to check model and explainer entries."""
    from explainers import EXPLAINERS
    from pipeline.explain.classifiers import arch_problem
    from pipeline.fuse.rules import rule_registries

    return {"arch_problem": arch_problem, "explainers": EXPLAINERS, **rule_registries()}


def store_path(config: PipelineConfig | dict) -> Path:
    run = typed(config, PipelineConfig).run
    return Path(run.store) if run.store else Path(run.root) / run.name / "pssl.zarr"


def run_stages(config: PipelineConfig | dict, stages: list[str]) -> Path:
    """Run the stages on the store of `config`; a data source or any stage's check the store would
    refuse stops them before anything is written."""
    config = typed(config, PipelineConfig)
    path = store_path(config)
    # a folder's listing comes first, so a missing data.root leaves no run folder behind; the embedded
    # sample is written into the run folder, so it is listed there
    listing = enumerate_images(config, path.parent) if INDEX_STAGE in stages and config.data.source != "sample" else None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with store_lock(path):
            return _run_locked(config, stages, path, listing)
    except OSError as error:  # a write that filled the disk often names no file: name the run's folder
        if is_disk_full(error) and error.filename is None:
            raise OSError(error.errno, error.strerror, str(path.parent)) from error
        raise


def _run_locked(config: PipelineConfig, stages: list[str], path: Path, listing) -> Path:
    from pipeline.explain import stage as explain
    from pipeline.index import stage as index
    from pipeline.explain import preflight
    from pipeline.cluster.session import ray_session

    started = time.perf_counter()
    if INDEX_STAGE in stages and listing is None:
        listing = enumerate_images(config, path.parent)  # before Ray starts
    _check_before_writing(config, path, stages, listing)
    if EXPLAIN_STAGE in stages:
        preflight.check_classifiers(config)  # before indexing, which can take hours
        _check_objectness_model(config)
    if listing or EXPLAIN_STAGE in stages:
        with ray_session(config), StageProgress() as progress:
            if EXPLAIN_STAGE in stages:
                preflight.check_resources(config)
            if listing:
                index.run(config, path, progress, listing)
            if EXPLAIN_STAGE in stages:
                explain.run(config, path, progress)
    if FUSE_STAGE in stages:
        from pipeline.fuse import stage as fuse
        summary = fuse.run(config, path)
        print(f"fuse: {summary['images_fused']} images in {summary['shards_fused']} shards fused "
              f"({summary['shards_already_done']} already done) from {len(summary['members'])} members"
              + (f" on {len(summary['shards_per_node'])} Ray node(s)" if summary["shards_per_node"] else ""))
    if EXPLAIN_STAGE in stages or FUSE_STAGE in stages:
        from pipeline.inspect.report import low_probability_line
        print(low_probability_line(path))
    print(f"store: {path.resolve()}  ({time.perf_counter() - started:.0f} s)")
    return path


def _check_objectness_model(config: PipelineConfig) -> None:
    """A missing or wrong object model file stops the run before the index stage writes anything."""
    from pipeline.explain.objectness import model_file, resolved_settings

    settings = resolved_settings(config.explain.objectness)
    if settings:
        model_file(settings)


def _check_before_writing(config: PipelineConfig, path: Path, stages: list[str], listing) -> None:
    """Every check of every stage this run will run, against the store as it is: a refused run changes
    nothing on disk (each stage checks again before it writes, for in-process callers)."""
    from pipeline.fuse import stage as fuse
    from pipeline.index import stage as index
    from pipeline.explain import map_settings

    if not (path / "zarr.json").is_file():
        return
    group = open_store(path, mode="r")
    if listing is not None and is_indexed(group):
        index.check_accepted(group, listing, config.store.shard_size, config.store.map_size)
    explains = EXPLAIN_STAGE in stages
    redone = map_settings.check_accepted(config, group) if explains else []
    if FUSE_STAGE in stages and fuse_settings(group) and not redone:  # redone maps: their labels are dropped
        made = map_settings.made_members(config) if explains else None
        fuse.check_accepted(config, group, made)


def _inspect(args: argparse.Namespace) -> int:
    from pipeline.inspect import report as inspect_store
    from pipeline.inspect import verify

    if args.image is not None:
        row = inspect_store.image_report(args.store, args.image, args.low_prob)
        print(inspect_store.to_json(row) if args.json else inspect_store.render_image(row, args.low_prob))
    else:
        data = inspect_store.report(args.store, args.low_prob, arrays=args.arrays)
        print(inspect_store.to_json(data) if args.json else inspect_store.render(data, args.classes))
    if args.overlay or args.contact:
        for picture in inspect_store.write_pictures(args.store, args.out, overlay=args.overlay,
                                                    contact=args.contact):
            print(f"wrote {picture}")
    if args.verify:
        problems = verify.verify_store(args.store, full=args.full)
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"verify: every shard flagged done is {'readable' if args.full else 'present and whole'}")
    return 0


def _gallery(args: argparse.Namespace) -> int:
    from pipeline.inspect.gallery import build_gallery

    ray_config = {"ray": {"address": args.ray_address, "num_cpus": args.workers}}
    with StageProgress() as progress:
        summary = build_gallery(args.store, args.out, low_prob=args.low_prob, ray_config=ray_config, progress=progress)
    print(f"gallery: {summary['shards_built']} shards built, {summary['shards_kept']} kept, {summary['images']} labelled "
          f"images ({summary['seconds']:.0f} s); open {summary['index']}")
    return 0


def _upgrade_store(args: argparse.Namespace) -> int:
    from core.store import FORMAT_VERSION, upgrade_in_place

    with store_lock(args.store):
        before = upgrade_in_place(args.store)
    print(f"{args.store}: store format {before} -> {FORMAT_VERSION}")
    return 0


def _export_paddleseg(args: argparse.Namespace) -> int:
    from pipeline import paddleseg_format

    print(f"export-paddleseg: the ignore band (mask 255) is written as {args.ignore_as}: "
          f"{paddleseg_format.IGNORE_AS_MEANING[args.ignore_as]} (--ignore-as {{255,background,foreground}})")
    plan = paddleseg_format.export_store(args.store, args.out, ignore_as=args.ignore_as,
                                         write_images=args.write_images)
    print(f"exported {len(plan.lines)} labels to {args.out} (train.txt lists them); PaddleSeg's PSSLDataset: "
          f"pssl_root={args.out} imagenet_root={plan.imagenet_root}")
    return 0


def _import_paddleseg(args: argparse.Namespace) -> int:
    from pipeline import paddleseg_format

    with store_lock(args.store):
        summary = paddleseg_format.import_released(args.root, args.store, imagenet_root=args.imagenet_root,
                                                   map_size=args.map_size, shard_size=args.shard_size)
    print(f"imported into {args.store}: {summary}")
    return 0


def _label_quality(args: argparse.Namespace) -> int:
    from pipeline import label_quality

    rows = label_quality.evaluate(args.store, args.ground_truth, plot_path=args.plot, encoding=args.gt_encoding)
    print("Consensus split at one threshold, best threshold per member subset:")
    print(label_quality.format_table(rows))
    if args.plot:
        print(f"wrote {args.plot}")
    try:
        scores = label_quality.fused_label_scores(args.store, args.ground_truth, args.gt_encoding)
    except ValueError as error:  # no fused labels yet: the sweep above is all there is
        print(f"fused labels: {error}")
        return 0
    print("\nThe fused labels as written (pssl/mask):")
    print(label_quality.format_scores(scores))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from pipeline import plan

    config = load_config(args.config, args.overrides, schema=PipelineConfig, context=config_context)
    print(plan.format_plan(plan.make_plan(config, images=args.images, devices=args.devices, measure=args.measure,
                                          rates_file=args.rates, results=args.results or plan.RESULTS)))
    return 0


STAGE_COMMANDS = {
    "generate-labels": [INDEX_STAGE, EXPLAIN_STAGE, FUSE_STAGE],
    INDEX_STAGE: [INDEX_STAGE],
    EXPLAIN_STAGE: [EXPLAIN_STAGE],
    FUSE_STAGE: [FUSE_STAGE],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser = functools.partial(commands.add_parser, parents=[common])
    for name in STAGE_COMMANDS:
        stage = add_parser(name, help=f"run: {' -> '.join(STAGE_COMMANDS[name])}")
        stage.add_argument("--config", default="conf/sample.yaml")
        stage.add_argument("overrides", nargs="*", help="key=value settings, e.g. explain.batch_size=4")
    inspect = add_parser("inspect", help="summarise, draw and verify a store")
    inspect.add_argument("store", type=Path)
    inspect.add_argument("--overlay", type=int, nargs="*", default=[], help="image indices for overlay sheets")
    inspect.add_argument("--contact", action="store_true", help="write a contact sheet of images and masks")
    inspect.add_argument("--verify", action="store_true", help="check every finished shard; exit 1 on problems")
    inspect.add_argument("--full", action="store_true", help="with --verify: decode every chunk, not just shard indexes")
    inspect.add_argument("--out", type=Path, default=None, help="folder for pictures (default: beside the store)")
    inspect.add_argument("--arrays", action="store_true", help="also list every array (shape, chunks, bytes on disk)")
    inspect.add_argument("--image", type=int, default=None, help="report one image: its index row, scores and labels")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    inspect.add_argument("--classes", type=int, default=20, help="classes listed in the text report (lowest weight first)")
    inspect.add_argument("--low-prob", type=float, default=LOW_TARGET_PROBABILITY,
                         help="flag images whose mean target probability is below this")
    gallery = add_parser("gallery", help="write a static site to browse the labels (open OUT/index.html)")
    gallery.add_argument("store", type=Path)
    gallery.add_argument("out", type=Path)
    gallery.add_argument("--low-prob", type=float, default=LOW_TARGET_PROBABILITY,
                         help="flag images whose mean target probability is below this")
    gallery.add_argument("--workers", type=int, default=None, help="local Ray CPUs (default: all)")
    gallery.add_argument("--ray-address", default=None, help="build the shards on this Ray cluster")
    gallery.set_defaults(handler=_gallery)
    export = add_parser("export-paddleseg", help="write labels in the released PSSL (PaddleSeg) layout")
    export.add_argument("store", type=Path)
    export.add_argument("out", type=Path)
    export.add_argument("--ignore-as", choices=["255", "background", "foreground"], default="255",
                        help="what the ignore band becomes (PaddleSeg reads everything but 1 as background)")
    export.add_argument("--write-images", action="store_true",
                        help="also write the images, renamed where PaddleSeg could not resolve them")
    export.set_defaults(handler=_export_paddleseg)
    imported = add_parser("import-paddleseg", help="make a store from released PSSL labels")
    imported.add_argument("root", type=Path, help="folder with train.txt and the <wnid>/*_eiseg.npz files")
    imported.add_argument("store", type=Path)
    imported.add_argument("--imagenet-root", type=Path, default=None, help="folder holding train/<wnid>/*.JPEG")
    imported.add_argument("--map-size", type=int, default=StoreSection().map_size)
    imported.add_argument("--shard-size", type=int, default=StoreSection().shard_size)
    imported.set_defaults(handler=_import_paddleseg)
    upgrade = add_parser("upgrade-store", help="rewrite a store of an older format as the current one, in place")
    upgrade.add_argument("store", type=Path)
    upgrade.set_defaults(handler=_upgrade_store)
    quality = add_parser("label-quality", help="mIoU of members, models and the ensemble vs true masks")
    quality.add_argument("store", type=Path)
    quality.add_argument("ground_truth", type=Path, help="folder of <image stem>.png masks")
    quality.add_argument("--gt-encoding", default="voc", help="voc: 0 bg, 255 ignore, k class; binary01; binary255; imagenet-s: id = R + 256 G, "
                              "1000 ignore")
    quality.add_argument("--plot", type=Path, default=None, help="PNG of mIoU against threshold")
    quality.set_defaults(handler=_label_quality)
    inspect.set_defaults(handler=_inspect)
    planned = add_parser("plan", help="passes, device-hours and store size a config will cost")
    planned.add_argument("--config", default="conf/sample.yaml")
    planned.add_argument("overrides", nargs="*", help="key=value settings, e.g. data.root=/data/imagenet/train")
    planned.add_argument("--images", type=int, default=None, help="images to plan for (default: count data.root)")
    planned.add_argument("--devices", type=int, default=1, help="devices (GPUs, or machines like this one) at once")
    planned.add_argument("--measure", type=int, default=0, metavar="N",
                         help="time each network on N of your images on this machine and project from that")
    planned.add_argument("--rates", type=Path, default=None,
                         help="benchmarks/gpu_bench.py's figures (its --out with .json) to take the networks' rates from")
    planned.add_argument("--results", type=Path, default=None,
                         help="the folder of the benchmarks' JSON figures (default: this checkout's results/)")
    planned.set_defaults(handler=_plan)
    args = parser.parse_args(argv)

    def command() -> int:
        if hasattr(args, "handler"):
            return args.handler(args)
        config = load_config(args.config, args.overrides, schema=PipelineConfig, context=config_context)
        run_stages(config, STAGE_COMMANDS[args.command])
        return 0

    return run_cli(command, debug=args.debug)
