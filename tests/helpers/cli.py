"""Running the pipeline's command line as a user does: a config file written to disk, a subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from core.errors import LINE_WIDTH

ROOT = Path(__file__).resolve().parents[2]


def pipeline_command(config: dict, tmp_path: Path, command: str = "generate-labels") -> list[str]:
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return [sys.executable, "-m", "pipeline", command, "--config", str(path)]


def run_cli(arguments: list[str], cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(arguments, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def fuse_only_config(store: Path, fg: float) -> dict:
    """A `fuse` command's config for an existing store (e.g. a synthetic one)."""
    return {"run": {"store": str(store)}, "fuse": {"refine": "none", "combine": "none", "fg_threshold": fg, "bg_threshold": 0.2,
                                                   "num_workers": 1}}


MAX_LINE = LINE_WIDTH


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one error line a refused or failed command ends with, checked: short, no traceback, no Ray
    traceback or colour codes, nothing else on stderr but progress bars and repair notes."""
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr and "\x1b[" not in result.stderr, result.stderr[-3000:]
    assert "ray::" not in result.stderr and "(pid=" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]], result.stderr[-3000:]
    assert len(lines[-1]) <= MAX_LINE, lines[-1]
    return lines[-1]
