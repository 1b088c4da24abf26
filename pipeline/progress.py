"""The stages' progress bar: images per stage (each model's count as a postfix), an ETA from the average rate.

One bar serves every stage of a run: `begin` starts a stage, `advance` counts a shard's images. Where
several models work through the same images (classify, explain) the bar shows the images the stage
has covered on average over its models, so "12/12 img" means twelve images, not twelve image x model
pairs. The ETA is the rate averaged over the whole stage (tqdm's smoothing=0): shards finish in bursts
and models differ in cost, and an exponential average swung between 4 and 13 minutes on the sample.
On a terminal it redraws in place; in a log file (not a terminal) it writes one line per interval.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

from core.errors import check_interrupted

TERMINAL_INTERVAL_S = 1.0
LOG_INTERVAL_S = 30.0
LOG_FORMAT = "{desc}{n_fmt}/{total_fmt} img ({percentage:.0f}%), {elapsed} elapsed, {remaining} left, {rate_fmt}{postfix}"


class _LogFile:
    """A log file as tqdm's output: the bare carriage returns and newlines tqdm sends to move its cursor are
    dropped, the bar's own lines (written by StageProgress.display) pass."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        if text.strip("\r\n"):
            self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class StageProgress(tqdm):
    """A tqdm bar that counts images per stage; see the module docstring."""

    def __init__(self, file=None, disable: bool = False, log_interval_s: float = LOG_INTERVAL_S):
        stream = file if file is not None else sys.stderr
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.per_model: dict[str, int] = {}
        self.starting, self.printed = True, None  # inside begin; (stage, count) of the last line logged
        options = ({"dynamic_ncols": True, "mininterval": TERMINAL_INTERVAL_S} if self.terminal
                   else {"bar_format": LOG_FORMAT, "mininterval": log_interval_s, "maxinterval": log_interval_s,
                         "leave": False})
        super().__init__(total=0, unit="img", smoothing=0, file=stream if self.terminal else _LogFile(stream),
                         disable=disable, **options)

    def begin(self, stage: str, images: int, models: list[str] = (), done: dict[str, int] | int = 0) -> None:
        """Start `stage` over `images` images; `done` is what an earlier run already did (per model when
        `models` are given), counted as done but not in the rate."""
        check_interrupted()  # a Ctrl-C Python swallowed stops the run here, not after it
        self._log_last_line()  # of the previous stage
        self.starting = True
        self.per_model = {model: int(done.get(model, 0)) for model in models} if models else {}
        self.set_description(stage, refresh=False)
        self.set_postfix_str(self._postfix(images), refresh=False)
        self.initial = self._covered() if models else int(done)
        self.reset(total=images)
        self.n, self.starting = self.initial, False
        self.refresh()

    def advance(self, images: int, model: str | None = None) -> None:
        """Count `images` more images done (by `model`, where the stage runs several)."""
        check_interrupted()
        if model is None or not self.per_model:
            self.update(images)
            return
        self.per_model[model] += images
        self.set_postfix_str(self._postfix(self.total), refresh=False)
        self.update(self._covered() - self.n)

    def _covered(self) -> int:
        return round(sum(self.per_model.values()) / len(self.per_model))

    def _postfix(self, total: int) -> str:
        return " ".join(f"{model} {count}/{total}" for model, count in self.per_model.items())

    def display(self, msg=None, pos=None):
        if not self.total or self.starting:
            return True
        if self.terminal:
            return super().display(msg, pos)
        if msg == "":  # tqdm clearing its line: nothing to clear in a log
            return True
        if self.printed != (self.desc, self.n):
            self.fp.write(str(self) + "\n")
            self.fp.flush()
            self.printed = (self.desc, self.n)
        return True

    def _log_last_line(self) -> None:
        if not self.disable and not self.terminal:
            self.display()

    def close(self):
        self._log_last_line()
        super().close()
