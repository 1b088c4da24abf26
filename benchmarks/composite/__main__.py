"""Command line of the composite world: `build` writes the splits, `sheet` draws a contact sheet of them."""
from __future__ import annotations

import argparse
import json
import sys

from benchmarks.composite.build import build
from benchmarks.composite.sheet import contact_sheet
from benchmarks.composite.tables import SPLITS
from core.errors import run_cli

ALL = "all"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.composite",
                                     description="Real photo cut-outs with exact masks on real photo backgrounds.")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="write images, 0/1 masks, file_list.txt and scenes.json per split")
    make.add_argument("dest", help="folder; each split goes to DEST/<split>")
    make.add_argument("--split", choices=[*SPLITS, ALL], default=ALL)
    make.add_argument("--seed", type=int, default=0)
    draw = commands.add_parser("sheet", help="a contact sheet of built scenes with the target's mask outlined")
    draw.add_argument("dest", help="the folder `build` wrote")
    draw.add_argument("out", help="PNG file to write")
    draw.add_argument("--split", choices=SPLITS, default="heldout")
    draw.add_argument("--count", type=int, default=24)
    args = parser.parse_args(argv)
    if args.command == "build":
        splits = list(SPLITS) if args.split == ALL else [args.split]
        return run_cli(lambda: print(json.dumps(build(args.dest, splits, args.seed), indent=1)))
    return run_cli(lambda: print(contact_sheet(args.dest, args.split, args.out, args.count)))


if __name__ == "__main__":
    sys.exit(main())
