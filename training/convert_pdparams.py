"""`convert-pdparams`: a PaddleSeg `.pdparams` as this project's checkpoint, or a one-line refusal.

The tensors come from `training.pdparams.translate` (every entry mapped, folded or dropped, with
the reason); they must then fill the `paddleseg` variant of the named network completely. OUT.pt
holds them under `model` (where every checkpoint loader looks) plus `pssl_model`: network, variant,
class count and source, so later runs build the variant the weights need.

    python -m training convert-pdparams IN.pdparams OUT.pt --model pp_liteseg_b
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from training.models import MODELS, PADDLESEG, create_model
from training.models.weights import LoadReport, load_matching
from training.pdparams import STEP_COUNTER, PdparamsError, Translation, read_pdparams, translate

CLASSIFIERS = ("conv_out.conv_out.weight", "seg_heads.0.conv_out.weight")


def class_count(state: dict[str, torch.Tensor]) -> int:
    for name in CLASSIFIERS:
        if name in state:
            return int(state[name].shape[0])
    raise PdparamsError(f"no classifier ({' or '.join(CLASSIFIERS)} after renaming): not a PaddleSeg "
                        "STDC-Seg or PP-LiteSeg model")


def check_complete(report: LoadReport, what: str) -> None:
    """A converted file must fill the model: anything skipped or missing means another network."""
    missing = [name for name in report.missing if not name.endswith(STEP_COUNTER)]
    if report.skipped or missing:
        example = next(iter(report.skipped.items()), None)
        detail = f"{example[0]}: {example[1]}" if example else f"missing {missing[0]}"
        raise PdparamsError(f"{what} ({len(report.skipped)} tensors do not fit, {len(missing)} missing; "
                            f"e.g. {detail}): another network?")


def convert(path: str | Path, name: str) -> tuple[torch.nn.Module, Translation, LoadReport]:
    """The `paddleseg` variant of network `name`, with every tensor from the file; raises if it does not fit."""
    if name not in MODELS:
        raise PdparamsError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    translation = translate(read_pdparams(path))
    model = create_model(name, class_count(translation.state), variant=PADDLESEG)
    report = load_matching(model, translation.state)
    check_complete(report, f"{path} does not fit {name}")
    return model, translation, report


def checkpoint_payload(model: torch.nn.Module, name: str, source: str | Path) -> dict:
    """What OUT.pt holds: the trainer's `model` entry plus which network and variant it belongs to."""
    classes = int(model.state_dict()[next(n for n in CLASSIFIERS if n in model.state_dict())].shape[0])
    return {"model": model.state_dict(),
            "pssl_model": {"name": name, "variant": PADDLESEG, "num_classes": classes, "converted_from": str(source)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training convert-pdparams",
                                     description="Convert a PaddleSeg .pdparams to this project's checkpoint.")
    parser.add_argument("source", type=Path, metavar="IN.pdparams")
    parser.add_argument("target", type=Path, metavar="OUT.pt")
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--quiet", action="store_true", help="only the summary, not one line per tensor")
    args = parser.parse_args(argv)
    model, translation, report = convert(args.source, args.model)
    if not args.quiet:
        print("\n".join(translation.lines()))
    counters = sum(1 for name in report.missing if name.endswith(STEP_COUNTER))
    args.target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_payload(model, args.model, args.source), args.target)
    print(f"{args.source} -> {args.target} ({args.model}, variant {PADDLESEG}, "
          f"{checkpoint_payload(model, args.model, args.source)['pssl_model']['num_classes']} classes): "
          f"{len(translation.mapped)} mapped, {len(translation.folded)} folded, {len(translation.dropped)} dropped, "
          f"0 missing ({counters} BatchNorm step counters, which PaddleSeg does not have, start at 0)")
    return 0
