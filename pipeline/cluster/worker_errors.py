"""Shards that failed inside Ray workers, told as one short line; the workers' tracebacks go to a log file.

`str()` of a Ray task error is the worker's whole traceback with the terminal's colour codes, and a
dead actor's error is a paragraph of Ray internals: folded into a message they made a 2,000-character
"line". The user needs the cause (the original exception, `RayTaskError.cause`), the shard, and what
to do; whoever debugs needs the traceback, which is written to `worker_errors.log` beside the store
(or, when that disk is the full one, the temp dir) and named in the line. `--debug` shows it too: the
stage error is raised from the first worker error.
"""
from __future__ import annotations

import datetime
import re
import tempfile
from pathlib import Path

import ray

from core.errors import LINE_WIDTH, PsslError, is_disk_full, one_line
from pipeline.cluster.session import StageError

LOG_NAME = "worker_errors.log"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cause(error: BaseException) -> BaseException:
    """The exception the worker raised, where Ray kept it; else Ray's own error."""
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(error.cause, BaseException):
        return error.cause
    return error


def describe(error: BaseException) -> str:
    """The cause in a few words: a lost worker or node as such, anything else as its own one line."""
    found = cause(error)
    if isinstance(found, (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError,
                          ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return "its worker died on every try (process or node lost)"
    if isinstance(found, ray.exceptions.RayError):
        return type(found).__name__
    return ANSI.sub("", one_line(found))


def write_log(store_path: Path, failures: list[tuple[str, int, BaseException]]) -> Path:
    """Append each failure's full text (Ray's traceback, colour codes removed) to the run's log; returns it."""
    text = "".join(f"--- {datetime.datetime.now().isoformat(timespec='seconds')} {model} shard {shard}\n"
                   f"{ANSI.sub('', str(error))}\n" for model, shard, error in failures)
    for folder in (Path(store_path).parent, Path(tempfile.gettempdir())):
        log = folder / LOG_NAME
        try:
            with open(log, "a") as file:
                file.write(text)
            return log
        except OSError:  # the run's disk is the full one: the temp dir still takes it
            continue
    return Path(store_path).parent / LOG_NAME


def stage_error(stage: str, store_path: Path, failures: list[tuple[str, int, BaseException]]) -> PsslError:
    """One line for shards that failed for good: a config or input mistake (every retry fails alike) as
    itself, else the first cause with its shard, what to do, and where the tracebacks are."""
    for *_, error in failures:
        if isinstance(cause(error), PsslError):
            return cause(error)
    log = write_log(store_path, failures)
    model, shard, error = failures[0]
    more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
    what = describe(error)
    advice = "re-run the same command: finished shards are kept"
    if is_disk_full(cause(error)):
        advice = f"free space under {Path(store_path).parent} and re-run: finished shards are kept"
    line = f"{stage} {model} shard {shard}{more}: {what}; {advice} (traceback: {log})"
    if len("error: " + line) > LINE_WIDTH and log.parent == Path(store_path).parent:  # a deep run folder
        line = f"{stage} {model} shard {shard}{more}: {what}; {advice} (traceback: {LOG_NAME} beside the store)"
    found = StageError(line)
    found.__cause__ = error
    return found
