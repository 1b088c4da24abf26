"""The one base class of every error a user can cause; both CLIs print it as one line and exit 2."""
from __future__ import annotations


class PsslError(Exception):
    """A mistake in the input, the config or the store: its message says what is wrong and what to do."""
