"""PaddleSeg `.pdparams` -> this project's names and tensors, exactly, and nothing unaccounted for.

`translate` works from the file alone: it renames PaddleSeg's modules to this project's
(`cp.` -> `context.`, `ppseg_head.cm.` -> `sppm.`, `_conv`/`_batch_norm` -> `conv`/`bn`,
`_mean`/`_variance` -> `running_mean`/`running_var`, ...), folds each conv bias that feeds a
BatchNorm into that BN's running mean (BN(Wx + b) with mean m equals BN(Wx) with mean m - b, in eval
mode exactly; in train mode the batch mean removes b either way), checks PP-LiteSeg's constant
`_scale` is 1 and drops it, and drops the detail heads PaddleSeg builds but never runs. Every entry is
reported as mapped, folded or dropped (with the reason); loading into a model then lists what is
missing. The result is meant for the `paddleseg` variant of each network (see training/models).

    python -m training convert-pdparams IN.pdparams OUT.pt --model pp_liteseg_b
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.models import MODELS, PADDLESEG, create_model
from training.models.weights import LoadReport, load_matching
from training.pdparams import PdparamsError, read_pdparams

# Applied in order to every PaddleSeg name.
RENAMES = (
    (r"^cp\.backbone\.", "backbone."),
    (r"^cp\.", "context."),
    (r"^ppseg_head\.cm\.stages\.(\d+)\.1\.", r"sppm.stages.\1."),
    (r"^ppseg_head\.cm\.", "sppm."),
    (r"^ppseg_head\.arm_list\.", "uafms."),
    (r"\._conv\.", ".conv."),
    (r"\._batch_norm\.", ".bn."),
    (r"\._mean$", ".running_mean"),
    (r"\._variance$", ".running_var"),
)
# A conv bias (this project's name) -> the running mean of the BatchNorm right after that conv.
FOLDS = ((r"^(.*)\.conv\.bias$", r"\1.bn.running_mean"), (r"^(.*)\.conv_atten\.bias$", r"\1.bn_atten.running_mean"))
UNUSED = ((r"^conv_out_sp(16|4|2)\.", "a detail head PaddleSeg builds but runs only with use_boundary_16/4/2 "
                                      "(off by default; training uses conv_out_sp8)"),)
CONSTANT_ONE = r"\._scale$"  # UAFM: y * (_scale - attention), a stop-gradient constant 1
CLASSIFIERS = ("conv_out.conv_out.weight", "seg_heads.0.conv_out.weight")
STEP_COUNTER = "num_batches_tracked"


@dataclass
class Translation:
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    mapped: dict[str, str] = field(default_factory=dict)  # PaddleSeg name -> this project's
    folded: dict[str, str] = field(default_factory=dict)  # PaddleSeg conv bias -> BN running mean it went into
    dropped: dict[str, str] = field(default_factory=dict)  # PaddleSeg name -> why

    def lines(self) -> list[str]:
        return ([f"  mapped  {src} -> {dst}" for src, dst in self.mapped.items()]
                + [f"  folded  {src} -> {dst} (subtracted)" for src, dst in self.folded.items()]
                + [f"  dropped {src}: {why}" for src, why in self.dropped.items()])


def rename(name: str) -> str:
    for pattern, replacement in RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def _fold_target(name: str) -> str | None:
    for pattern, replacement in FOLDS:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name)
    return None


def translate(arrays: dict[str, np.ndarray]) -> Translation:
    """This project's state dict for a PaddleSeg state dict, with the fate of every PaddleSeg entry."""
    result = Translation()
    renamed = {rename(name): name for name in arrays}
    biases = {}
    for name, source in renamed.items():
        reason = next((why for pattern, why in UNUSED if re.match(pattern, name)), None)
        target = _fold_target(name)
        if reason:
            result.dropped[source] = reason
        elif re.search(CONSTANT_ONE, name):
            if not np.array_equal(arrays[source], np.ones_like(arrays[source])):
                raise PdparamsError(f"{source} is {arrays[source].tolist()}, not the constant 1 PaddleSeg's UAFM "
                                    "uses; this converter cannot express that")
            result.dropped[source] = "constant 1 (UAFM fuses y * (1 - attention))"
        elif target is not None and target in renamed:
            biases[source] = target
        else:
            result.state[name] = torch.from_numpy(np.array(arrays[source], dtype=np.float32))
            result.mapped[source] = name
    for source, target in biases.items():
        bias = torch.from_numpy(np.array(arrays[source], dtype=np.float32))
        if bias.shape != result.state[target].shape:
            raise PdparamsError(f"{source} has shape {tuple(bias.shape)} but its BatchNorm {target} has "
                                f"{tuple(result.state[target].shape)}")
        result.state[target] = result.state[target] - bias
        result.folded[source] = target
    return result


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
