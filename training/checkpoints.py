"""Load weights for fine-tuning (every tensor whose shape matches) and for evaluation (all of them).

Fine-tuning PSSL weights on VOC changes the number of classes (1001 -> 21), so the heads' last
layers cannot be loaded; they are skipped and listed rather than failing the load, as the
reference does when it loads `model.pretrained` into a model with another class count. The
matching itself is `training.models.weights` (shared with ImageNet backbone loading); this adds
one-line errors for unusable files, the per-tensor listing, and the strict variant for evaluation.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.config import ConfigError
from training.models import PADDLESEG, PYTORCH, state_variant
from training.models.weights import LoadReport, load_matching, read_state_dict
from training.pdparams import STEP_COUNTER, PdparamsError, is_pdparams
from training.trainer import TrainingError


class CheckpointError(TrainingError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file."""


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load a trainer checkpoint (its `model` entry) or a plain state_dict into `model` where shapes match."""
    try:
        state = read_state_dict(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except PdparamsError as error:
        raise CheckpointError(str(error)) from None
    except Exception as error:  # torch.load raises many types, with many lines, for a corrupt or foreign file
        first_line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        raise CheckpointError(f"checkpoint {path} unusable (not a weights-only PyTorch checkpoint?): "
                              f"{type(error).__name__}: {first_line[:200]}") from None
    report = load_matching(model, state)
    if not report.loaded:
        raise CheckpointError(f"no tensor of {path} fits the model ({report.summary()}): another network?")
    return report


def checkpoint_variant(path: str | Path) -> str | None:
    """Which network variant a weights file needs: recorded by convert-pdparams, else seen in its tensors.

    A `.pdparams` is PaddleSeg's; a backbone alone (an ImageNet file) says nothing (None).
    """
    if is_pdparams(path):
        return PADDLESEG
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} unusable (not a weights-only PyTorch checkpoint?): "
                              f"{type(error).__name__}") from None
    if isinstance(raw, dict) and isinstance(raw.get("pssl_model"), dict):
        return raw["pssl_model"].get("variant")
    return state_variant(read_state_dict(path))


def resolve_variant(configured: str | None, weight_files: list) -> str:
    """`model.variant` if set, else the one the weight files need (default `pytorch`); a conflict is an error."""
    needs = {str(path): variant for path in weight_files if path
             for variant in [checkpoint_variant(path)] if variant}
    for path, variant in needs.items():
        if configured is not None and variant != configured:
            raise ConfigError(f"model.variant={configured} but {path} holds {variant} weights: drop "
                              f"model.variant or set it to {variant} (docs/models.md, Variants)")
    if len(set(needs.values())) > 1:
        raise ConfigError(f"the weight files need different network variants: {needs}")
    return configured or next(iter(needs.values()), PYTORCH)


def load_complete(model: nn.Module, path: str | Path) -> LoadReport:
    """Load weights that must fit entirely (a fine-tuned model to evaluate); a partial fit is an error.

    BatchNorm's step counters may be missing (a PaddleSeg `.pdparams` has none): evaluation never reads them.
    """
    report = load_pretrained(model, path)
    missing = [name for name in report.missing if not name.endswith(STEP_COUNTER)]
    if report.skipped or missing:
        example = next(iter(report.skipped.items()), None)
        detail = f"e.g. {example[0]}: {example[1]}" if example else f"e.g. missing {missing[0]}"
        raise CheckpointError(f"checkpoint {path} does not fit the model ({report.summary()}; {detail}): "
                              "another network or class count?")
    return report


def describe(report: LoadReport) -> str:
    """The summary line, then one line per skipped checkpoint tensor and per model tensor left as initialised."""
    lines = [report.summary()]
    lines += [f"  skipped {name}: {reason}" for name, reason in report.skipped.items()]
    lines += [f"  left as initialised: {name}" for name in report.missing]
    return "\n".join(lines)
