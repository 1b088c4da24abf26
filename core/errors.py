"""The one base class of every error a user can cause, and how both CLIs report errors: one line each."""
from __future__ import annotations

import errno
import signal
import sys
import threading
from typing import Callable

INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
LINE_WIDTH = 200  # the longest error line a user should have to read (a message is shortened to fit where it can)


class PsslError(Exception):
    """A mistake in the input, the config or the store: its message says what is wrong and what to do."""


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def brief(value, width: int = 24) -> str:
    """A value shown in a one-line message: its repr, cut to `width` characters."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def listed(items: list[str], width: int) -> str:
    """`items` joined by '; ', as many as fit in `width` characters (at least one), then how many more."""
    shown: list[str] = []
    for i, item in enumerate(items):
        more = len(items) - i - 1
        if shown and len("; ".join(shown + [item]) + (f"; {more} more" if more else "")) > width:
            return "; ".join(shown) + f"; {len(items) - i} more"
        shown.append(item)
    return "; ".join(shown)


def one_line(error: BaseException) -> str:
    """The error as one line; one re-raised from a DataLoader worker carries the worker's traceback: keep its last line."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or type(error).__name__}: {error.filename}"
    if isinstance(error, OSError) and error.strerror:  # not "[Errno 28] ...": the words are what a user reads
        return error.strerror
    text = str(error).strip()
    if "Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split()) or type(error).__name__


_ctrl_c = threading.Event()


def _on_ctrl_c(signum, frame):
    _ctrl_c.set()
    raise KeyboardInterrupt


def check_interrupted() -> None:
    """Raise again a Ctrl-C that Python swallowed: one landing in a finaliser or an import-lock callback is
    printed as "Exception ignored" and dropped, and the run would go on to exit 0. Called at stage boundaries
    and as work completes (pipeline/progress.py)."""
    if _ctrl_c.is_set():
        raise KeyboardInterrupt


def run_cli(command: Callable[[], object], debug: bool = False) -> int:
    """Run a CLI command: a user error (bad config, input, store, or a file that cannot be read or
    written) prints one line and returns 1, Ctrl-C returns 130 (even one Python swallowed, if the command
    ended before it could be raised again); `debug` shows the traceback instead."""
    _ctrl_c.clear()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_ctrl_c) if main_thread else None
    try:
        code = command()
        check_interrupted()
        return code if isinstance(code, int) else 0  # a command may return its result rather than a code
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return INTERRUPTED
    except (PsslError, OSError) as error:
        if debug:
            raise
        advice = "; free space there and re-run: finished shards are kept" if is_disk_full(error) else ""
        print(f"error: {one_line(error)}{advice}", file=sys.stderr)
        return 1
    finally:
        _ctrl_c.clear()
        if main_thread:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
