"""`python -m training <command> --config conf/X.yaml [key=value ...]`; bad input -> one line, exit 1 (--debug: traceback).

Also `python -m training convert-pdparams IN.pdparams OUT.pt --model NAME` (no config).
"""
from __future__ import annotations

import argparse
import sys

from core.config import load_config
from core.errors import run_cli
from core.schema import CityscapesFinetuneConfig, FinetuneConfig, PretrainConfig
from training import convert_pdparams, finetune_cityscapes, finetune_voc, pretrain
from training.models import MODELS

# Each command takes the resolved config dict, checked first against its schema.
COMMANDS = {"pretrain": pretrain.run, "finetune-voc": finetune_voc.run, "eval-voc": finetune_voc.run_eval,
            "finetune-cityscapes": finetune_cityscapes.run, "eval-cityscapes": finetune_cityscapes.run_eval}
SCHEMAS = {"pretrain": PretrainConfig, "finetune-voc": FinetuneConfig, "eval-voc": FinetuneConfig,
           "finetune-cityscapes": CityscapesFinetuneConfig, "eval-cityscapes": CityscapesFinetuneConfig}
CONVERT = "convert-pdparams"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CONVERT]:
        return run_cli(lambda: convert_pdparams.main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("command", choices=sorted([*COMMANDS, CONVERT]))
    parser.add_argument("--config", required=True, help="YAML config under conf/")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_intermixed_args(argv)

    def command() -> None:
        config = load_config(args.config, args.overrides, schema=SCHEMAS[args.command], context={"seg_models": MODELS})
        COMMANDS[args.command](config)

    return run_cli(command, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
