"""Load weights for fine-tuning (every tensor whose shape matches) and for evaluation (all of them).

Fine-tuning PSSL weights on VOC changes the number of classes (1001 -> 21), so the heads' last
layers cannot be loaded; they are skipped and listed rather than failing the load, as the
reference does when it loads `model.pretrained` into a model with another class count. The
matching itself is `training.models.weights` (shared with ImageNet backbone loading); this adds
one-line errors for unusable files, the per-tensor listing, and the strict variant for evaluation.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from training.models.weights import LoadReport, load_matching, read_state_dict
from training.trainer import TrainingError


class CheckpointError(TrainingError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file."""


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load a trainer checkpoint (its `model` entry) or a plain state_dict into `model` where shapes match."""
    try:
        state = read_state_dict(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as error:  # torch.load raises many types, with many lines, for a corrupt or foreign file
        first_line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        raise CheckpointError(f"checkpoint {path} unusable (not a weights-only PyTorch checkpoint?): "
                              f"{type(error).__name__}: {first_line[:200]}") from None
    report = load_matching(model, state)
    if not report.loaded:
        raise CheckpointError(f"no tensor of {path} fits the model ({report.summary()}): another network?")
    return report


def load_complete(model: nn.Module, path: str | Path) -> LoadReport:
    """Load weights that must fit entirely (a fine-tuned model to evaluate); a partial fit is an error."""
    report = load_pretrained(model, path)
    if report.skipped or report.missing:
        example = next(iter(report.skipped.items()), None)
        detail = f"e.g. {example[0]}: {example[1]}" if example else f"e.g. missing {report.missing[0]}"
        raise CheckpointError(f"checkpoint {path} does not fit the model ({report.summary()}; {detail}): "
                              "another network or class count?")
    return report


def describe(report: LoadReport) -> str:
    """The summary line, then one line per skipped checkpoint tensor and per model tensor left as initialised."""
    lines = [report.summary()]
    lines += [f"  skipped {name}: {reason}" for name, reason in report.skipped.items()]
    lines += [f"  left as initialised: {name}" for name in report.missing]
    return "\n".join(lines)
