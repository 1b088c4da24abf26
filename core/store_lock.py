"""One writer per store: a lock file beside it names the run that holds it (pid, host, process start).

A second run on the same store stops at once; a lock whose process is gone (same host, pid not
running or reused by another process) is stale and taken over with a message. Read-only commands
take no lock. The lock sits beside the store (`<store>.lock`), so it exists before the store does.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path

import psutil

from core.store import StoreError


class StoreLocked(StoreError):
    """Another run is writing the same store."""


def lock_path(store: str | Path) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".lock")


def _this_process() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": psutil.Process().create_time()}


def _is_stale(holder: dict) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if holder.get("host") != socket.gethostname():
        return False  # another machine's process cannot be checked from here
    try:
        return abs(psutil.Process(int(holder["pid"])).create_time() - float(holder["started"])) > 1e-3
    except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
        return True


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # half-written by a run killed while taking it: treated as stale


@contextlib.contextmanager
def store_lock(store: str | Path):
    """Hold the store's lock for the duration of the block, or raise StoreLocked naming the holder."""
    path = lock_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = _this_process()
    for _ in range(2):
        try:
            with open(path, "x") as file:
                json.dump(me, file)
            break
        except FileExistsError:
            holder = _read(path)
            if holder and not _is_stale(holder):
                raise StoreLocked(f"{store} is in use by pid {holder['pid']} on {holder['host']}: wait for that "
                                  f"run to finish (if it is gone, delete {path})") from None
            print(f"note: taking over the stale lock {path} (pid {holder.get('pid', '?')} on "
                  f"{holder.get('host', '?')} is gone)", file=sys.stderr)
            path.unlink(missing_ok=True)
    else:
        raise StoreLocked(f"could not take the lock {path}: another run took it at the same moment")
    try:
        yield
    finally:
        if _read(path) == me:
            path.unlink(missing_ok=True)
