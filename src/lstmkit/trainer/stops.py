"""Why training stops before its last epoch, checked after every optimisation step.

* **Signals.** While :class:`Stops` is active, SIGINT (Ctrl-C) and SIGTERM do not kill the process:
  they are noted, the current step finishes, and the trainer writes a checkpoint and the best model
  so far before returning (the command then exits 130 / 143). A second Ctrl-C interrupts at once.
* **The time budget.** ``time_left()`` says how many seconds training may still use: from the
  trainer's own ``max_time`` by default, or from whoever owns a larger budget (``lstmkit.tasks.fit``
  leaves time for the final evaluation and the model folder).
* **Mid-epoch checkpoints.** An epoch longer than ``checkpoint_every`` seconds is checkpointed on
  the way, so a kill -9 never loses more than that.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

CHECKPOINT_EVERY_S = 600.0
SIGNAL_NAMES: dict[int, str] = {int(signal.SIGINT): "SIGINT", int(signal.SIGTERM): "SIGTERM"}


class Stops:
    """Signals, the time budget and checkpoint timing for one :meth:`Trainer.fit`."""

    def __init__(
        self,
        max_time: float | None,
        time_left: Callable[[], float] | None = None,
        checkpoint_every: float = CHECKPOINT_EVERY_S,
    ):
        self.t0 = time.monotonic()
        self.max_time = max_time
        self._time_left = time_left
        self.checkpoint_every = checkpoint_every
        self.last_checkpoint = self.t0
        self.signal: int | None = None
        self._saved: dict[int, Any] = {}

    # ------------------------------------------------------------------ signals
    def __enter__(self) -> Stops:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNAL_NAMES:
                self._saved[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        if self.signal is None:
            self.signal = signum
            name = SIGNAL_NAMES.get(signum, str(signum))
            import sys

            print(
                f"\n{name}: finishing this step, then saving a checkpoint (Ctrl-C again to quit at once)",
                file=sys.stderr,
                flush=True,
            )

    # ------------------------------------------------------------------ budget and checkpoints
    def time_left(self) -> float | None:
        """Seconds training may still use (None: no budget)."""
        if self._time_left is not None:
            return self._time_left()
        if self.max_time is None:
            return None
        return self.t0 + self.max_time - time.monotonic()

    def reason(self) -> str | None:
        """``"interrupted"`` after a signal, ``"max_time"`` once the budget is spent, else None."""
        if self.signal is not None:
            return "interrupted"
        left = self.time_left()
        return "max_time" if left is not None and left <= 0 else None

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self.last_checkpoint >= self.checkpoint_every

    def checkpointed(self) -> None:
        self.last_checkpoint = time.monotonic()
