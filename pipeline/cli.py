"""`python -m pipeline <command>`: the label pipeline's verbs. Errors a user can fix print as one line."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from pipeline.classifiers import ClassifierError
from pipeline.config import ConfigError, get, load_config
from pipeline.images import BadImage
from pipeline.ray_runtime import StageError
from pipeline.sources import DatasetError, enumerate_images
from pipeline.store import StoreError

USER_ERRORS = (ConfigError, DatasetError, StoreError, ClassifierError, BadImage, StageError)


def store_path(config: dict) -> Path:
    explicit = get(config, "run.store", None)
    if explicit:
        return Path(explicit)
    return Path(get(config, "run.root", "runs")) / get(config, "run.name") / "pssl.zarr"


def _progress_bar() -> tqdm:
    return tqdm(total=0, unit="img", dynamic_ncols=True, mininterval=1.0)


def _run_stages(config: dict, stages: list[str]) -> Path:
    from pipeline import explain, index
    from pipeline.ray_runtime import ray_session

    path = store_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    listing = enumerate_images(config, path.parent) if "index" in stages else None  # fail before Ray starts
    with ray_session(config), _progress_bar() as progress:
        if listing:
            index.run(config, path, progress, listing)
        if "explain" in stages:
            explain.run(config, path, progress)
    if "fuse" in stages:
        from pipeline import fuse
        fuse.run(config, path)
    print(f"store: {path.resolve()}  ({time.perf_counter() - started:.0f} s)")
    return path


def _inspect(args: argparse.Namespace) -> int:
    from pipeline import inspect_store, verify

    print(inspect_store.summarize(args.store))
    if args.overlay or args.contact:
        for picture in inspect_store.write_pictures(args.store, args.out, overlay=args.overlay,
                                                    contact=args.contact):
            print(f"wrote {picture}")
    if args.verify:
        problems = verify.verify_store(args.store)
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("verify: every shard flagged done is readable and complete")
    return 0


STAGE_COMMANDS = {
    "generate-labels": ["index", "explain", "fuse"],
    "index": ["index"],
    "explain": ["explain"],
    "fuse": ["fuse"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in STAGE_COMMANDS:
        stage = commands.add_parser(name, help=f"run: {' -> '.join(STAGE_COMMANDS[name])}")
        stage.add_argument("--config", default="conf/sample.yaml")
        stage.add_argument("overrides", nargs="*", help="key=value settings, e.g. explain.batch_size=4")
    inspect = commands.add_parser("inspect", help="summarise, draw and verify a store")
    inspect.add_argument("store", type=Path)
    inspect.add_argument("--overlay", type=int, nargs="*", default=[], help="image indices for overlay sheets")
    inspect.add_argument("--contact", action="store_true", help="write a contact sheet of images and masks")
    inspect.add_argument("--verify", action="store_true", help="check every finished shard; exit 1 on problems")
    inspect.add_argument("--out", type=Path, default=None, help="folder for pictures (default: beside the store)")
    args = parser.parse_args(argv)
    try:
        if args.command == "inspect":
            return _inspect(args)
        _run_stages(load_config(args.config, args.overrides), STAGE_COMMANDS[args.command])
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
