"""What is on disk under a run folder, as checksums: a refused run must leave every byte as it was."""
from __future__ import annotations

import hashlib
from pathlib import Path


def checksums(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (the store, config.yaml, its lock aside)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(folder).rglob("*")) if path.is_file() and path.suffix != ".lock"}
