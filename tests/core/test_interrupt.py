"""Ctrl-C ends a command with 130 and one line, even when Python swallowed its KeyboardInterrupt."""
from __future__ import annotations

import os
import signal

import pytest

from core import errors

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point of the test


class InterruptsWhileFinalised:
    """Sends Ctrl-C to this process from its finaliser: the KeyboardInterrupt is raised there, where Python
    prints "Exception ignored" and drops it, as it does inside an import-lock callback (seen in CI)."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


def test_a_swallowed_ctrl_c_still_ends_the_command_with_130(capsys):
    steps = []

    def command():
        InterruptsWhileFinalised()  # dropped at once: its finaliser runs and swallows the interrupt
        steps.append("went on")
        with pytest.raises(KeyboardInterrupt):
            errors.check_interrupted()  # what the progress bars call as work completes
        steps.append("raised again")
        return 0

    assert errors.run_cli(command) == errors.INTERRUPTED
    assert steps == ["went on", "raised again"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted; re-run the same command to resume"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    errors.check_interrupted()  # cleared on the way out: the next command starts clean


def test_a_command_that_finishes_before_a_swallowed_ctrl_c_is_raised_again_is_still_interrupted():
    def command():
        InterruptsWhileFinalised()
        return 0

    assert errors.run_cli(command) == errors.INTERRUPTED
