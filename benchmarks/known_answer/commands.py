"""Run the project's own command lines as subprocesses and keep each one's text, wall time and status.

The reports print these commands beside the numbers they produced, so every number can be re-made by
pasting one line; a subprocess per stage also gives each stage a fresh Ray / torch state.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.errors import PsslError

# What the Makefile exports for every target; set here too so a direct `python -m` run matches `make`.
ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONHASHSEED": "0",
               "TQDM_DISABLE": "1"}


class CommandFailed(PsslError, RuntimeError):
    """A stage's command exited non-zero; the message names it and ends with its last output lines."""


def python_command(module: str, *args: str) -> list[str]:
    """`<this python> -m module args`: the venv's interpreter, as the Makefile uses."""
    return [sys.executable, "-m", module, *args]


def flatten(nested: dict, prefix: str = "") -> dict:
    """{a: {b: 1}, c: [2]} -> {'a.b': 1, 'c': [2]}: the leaves of a nested section as dotted keys."""
    flat = {}
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def as_overrides(nested: dict) -> list[str]:
    """key=value arguments (values in YAML flow style) that core.config.apply_overrides reads back."""
    return [f"{key}={yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix('...').strip()}"
            for key, value in flatten(nested).items()]


def shown(argv: list[str], env: dict | None = None) -> str:
    """The command as a user would type it from the repository root (with its own environment settings)."""
    words = list(argv)
    if words and words[0] == sys.executable:
        words[0] = ".venv/bin/python"
    return shlex.join([f"{key}={value}" for key, value in (env or {}).items()] + words)


@dataclass
class CommandLog:
    """Every command run so far: [{name, command, seconds, status, log, load}]."""
    log_dir: Path
    entries: list[dict] = field(default_factory=list)

    def run(self, name: str, argv: list[str], env: dict | None = None) -> dict:
        """Run `argv` (with `env` added to the environment), streaming its output to <log_dir>/<name>.log;
        raise CommandFailed if it fails."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        env = {key: str(value) for key, value in (env or {}).items()}
        print(f"[{name}] {shown(argv, env)}", flush=True)
        started, load_before = time.perf_counter(), os.getloadavg()[0]
        with open(log_path, "w") as log:
            status = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **ENVIRONMENT, **env}).returncode
        # the 1-minute load average before and after: on a shared machine it says how much the time is worth
        entry = {"name": name, "command": shown(argv, env), "seconds": round(time.perf_counter() - started, 1),
                 "status": status, "log": str(log_path),
                 "load": [round(load_before, 1), round(os.getloadavg()[0], 1)]}
        self.entries.append(entry)
        print(f"[{name}] exit {status} after {entry['seconds']:.0f} s (log: {log_path})", flush=True)
        if status != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise CommandFailed(f"{name} failed (exit {status}): {entry['command']}\n{tail}")
        return entry

    def command(self, name: str) -> str:
        return next(entry["command"] for entry in self.entries if entry["name"] == name)
