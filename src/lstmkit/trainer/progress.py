"""Progress output on stderr: a tqdm bar on a terminal, plain log lines otherwise, nothing when quiet."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import TextIO

LOG_EVERY_S = 10.0  # plain-log mode: at most one batch line per this many seconds (~10% steps)


def format_metrics(metrics: Mapping[str, float]) -> str:
    """``"train_loss 0.1234  valid_loss 0.2345"`` (4 significant digits)."""
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


class Progress:
    """One epoch's progress display.

    ``mode``: ``"bar"`` (tqdm with loss, rate, ETA), ``"log"`` (a line with loss, rate and ETA
    every ~10% of the batches, at most every LOG_EVERY_S seconds) or ``"off"``.
    :meth:`epoch_summary` prints one line per epoch unless off.
    """

    def __init__(self, quiet: bool, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        if quiet or not enabled:
            self.mode = "off"
        else:
            self.mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "log"
        self._bar = None
        self._total = 0
        self._done = 0
        self._epoch = 0
        self._t0 = 0.0
        self._last_log = 0.0

    def start_epoch(self, epoch: int, epochs: int, total_batches: int, done: int = 0) -> None:
        self._total, self._done, self._epoch, self._t0 = total_batches, done, epoch, time.monotonic()
        self._last_log = self._t0
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_batches,
                initial=done,
                desc=f"epoch {epoch}/{epochs}",
                unit="batch",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )

    def update(self, loss: float) -> None:
        self._done += 1
        if self.mode == "bar" and self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            self._bar.update(1)
        elif self.mode == "log":
            step = max(1, math.ceil(self._total / 10))
            now = time.monotonic()
            if self._done % step == 0 and self._done < self._total and now - self._last_log >= LOG_EVERY_S:
                self._last_log = now
                rate = self._done / max(time.monotonic() - self._t0, 1e-9)
                eta = (self._total - self._done) / max(rate, 1e-9)
                self.log(
                    f"  epoch {self._epoch} batch {self._done}/{self._total}  loss {loss:.4g}  "
                    f"{rate:.1f} batch/s  eta {eta:.0f}s"
                )

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def epoch_summary(
        self, epoch: int, epochs: int, metrics: Mapping[str, float], seconds: float, note: str = ""
    ) -> None:
        self.log(f"epoch {epoch}/{epochs}  {format_metrics(metrics)}  {seconds:.1f}s{note}")

    def log(self, line: str, force: bool = False) -> None:
        """One line on stderr (also when quiet with ``force``: what the user must know to go on)."""
        if self.mode != "off" or (force and self.enabled):
            print(line, file=self.stream, flush=True)
