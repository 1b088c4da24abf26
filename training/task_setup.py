"""What every training task sets up the same way: the network, where to resume from, the saved config."""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from core.config import ConfigError, get, recorded
from training.checkpoints import resolve_variant
from training.models import create_model
from training.trainer import CHECKPOINT_DIR, LAST


def check_model_classes(model: torch.nn.Module, num_classes: int) -> None:
    """One tiny forward pass, so a head of the wrong width fails here rather than inside the loss."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, 64, 64))
    model.train()
    if logits.shape[1] != num_classes:
        raise ConfigError(f"class count mismatch: the model outputs {logits.shape[1]} classes "
                          f"but num_classes={num_classes}")


def build_model(config, num_classes: int, weight_files: tuple = ()) -> torch.nn.Module:
    """The configured network, in the variant its weights need (`model.variant`, recorded back into config)."""
    name = config.model.name
    backbone_weights = config.model.backbone_weights
    variant = resolve_variant(config.model.variant, [backbone_weights, *weight_files])
    config.model.variant = variant  # so the config.yaml saved beside the run says which
    try:
        model = create_model(name, num_classes, backbone_weights, variant=variant)
    except KeyError as error:
        raise ConfigError(f"model.name: {error.args[0]}") from None
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"model.backbone_weights: {error}") from None
    check_model_classes(model, num_classes)
    return model


DATA_KEYS = ("format", "store", "root", "pssl_root", "imagenet_root", "list_file", "train_split")  # what is trained on
NAME_KEYS = ("format", "train_split")  # the others are paths, compared resolved


def resume_path(config, out_dir: Path) -> Path | None:
    """`run.resume`: auto (last.pt if present), a checkpoint path, or null for a fresh start. A checkpoint
    trained on other data (its run's config.yaml names another store) is refused: resuming would mix them."""
    resume = config.run.resume
    if resume in (None, False, "none", "null"):
        return None
    if resume == "auto":
        last = out_dir / CHECKPOINT_DIR / LAST
        checkpoint = last if last.is_file() else None
    else:
        checkpoint = Path(resume)
    if checkpoint is not None:
        _refuse_other_data(config, checkpoint)
    return checkpoint


def _refuse_other_data(config: dict, checkpoint: Path) -> None:
    recorded_file = checkpoint.parent.parent / "config.yaml"  # <out_dir>/checkpoints/<file>: written by write_config
    if not recorded_file.is_file():
        return
    was, now = yaml.safe_load(recorded_file.read_text()) or {}, recorded(config)
    for key in DATA_KEYS:
        old, new = _data_value(was, key), _data_value(now, key)
        if old != new:
            raise ConfigError(f"run.resume: the checkpoint was trained on data.{key}={old}; "
                              "set run.out_dir to a new folder or run.resume=null")


def _data_value(config: dict, key: str):
    value = get(config, f"data.{key}", None)
    return str(Path(value).resolve()) if isinstance(value, str) and key not in NAME_KEYS else value


def write_config(out_dir: Path, config) -> None:
    """The validated config, every default included, beside the outputs, so a run can be repeated exactly."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(recorded(config), sort_keys=False))
