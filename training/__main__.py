"""`python -m training <command> --config conf/X.yaml [key=value ...]`; bad input -> one line, exit 1.

Also `python -m training convert-pdparams IN.pdparams OUT.pt --model NAME` (no config).
"""
from __future__ import annotations

import argparse
import sys

from core.config import load_config
from core.errors import PsslError
from training import convert_pdparams, finetune_voc, pretrain

# Each command takes the resolved config dict.
COMMANDS = {"pretrain": pretrain.run, "finetune-voc": finetune_voc.run, "eval-voc": finetune_voc.run_eval}
CONVERT = "convert-pdparams"


def one_line(error: BaseException) -> str:
    """An error re-raised from a DataLoader worker carries the worker's traceback: keep its last line."""
    text = str(error).strip()
    if "Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == [CONVERT]:
            return convert_pdparams.main(argv[1:])
        parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
        parser.add_argument("command", choices=sorted([*COMMANDS, CONVERT]))
        parser.add_argument("--config", required=True, help="YAML config under conf/")
        parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
        args = parser.parse_intermixed_args(argv)
        COMMANDS[args.command](load_config(args.config, args.overrides))
    except PsslError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
