"""Progress output: plain lines when not a terminal, nothing when quiet, a tqdm bar on a terminal."""

from __future__ import annotations

import io

from lstmkit.trainer import progress as progress_mod
from lstmkit.trainer.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(p: Progress) -> None:
    p.start_epoch(1, 2, 20)
    for _ in range(20):
        p.update(0.5)
    p.end_epoch()
    p.epoch_summary(1, 2, {"train_loss": 0.5, "valid_loss": 0.25}, 1.5, "  *")


def test_plain_lines_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress_mod, "LOG_EVERY_S", 0.0)
    out = io.StringIO()
    p = Progress(quiet=False, stream=out)
    assert p.mode == "log"
    _run(p)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "epoch 1/2  train_loss 0.5  valid_loss 0.25  1.5s  *"
    assert len(lines) == 10 and "batch 2/20" in lines[0] and "eta" in lines[0] and "batch/s" in lines[0]


def test_quiet_prints_nothing_and_terminal_gets_a_bar():
    out = io.StringIO()
    _run(Progress(quiet=True, stream=out))
    assert out.getvalue() == ""
    tty = _Tty()
    p = Progress(quiet=False, stream=tty)
    assert p.mode == "bar"
    _run(p)
    assert "epoch 1/2" in tty.getvalue() and "batch" in tty.getvalue()
