"""What every robustness case asserts, whatever the task (tests/robustness/test_*.py use it).

A case runs one command in-process and states its exit code and a fragment of its message. For
every case: no traceback anywhere, a user error is exactly one line ``error: ...`` on stderr,
nothing is left half-written (no new output folder, nothing beside it), and every file that was
there before (a trained model, an earlier output) is byte-identical afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lstmkit.cli.main import main


@dataclass(frozen=True)
class Case:
    """One bad input or fault: ``argv`` (built from the test's folders), the exit code, and a
    fragment the message must contain (``""``: any; exit 0 cases may check stderr warnings)."""

    id: str
    argv: Callable[[dict[str, Path]], Sequence[str]]
    code: int = 2
    fragment: str = ""
    stream: str = "err"  # where the fragment appears: "err" or "out"
    setup: Callable[[dict[str, Path]], None] | None = None
    keep: tuple[str, ...] = field(default=())  # names in the dict whose folders must not change


def snapshot(paths: Sequence[Path]) -> dict[str, bytes]:
    """Every file under ``paths``, by path, with its bytes."""
    out: dict[str, bytes] = {}
    for root in paths:
        if root.is_file():
            out[str(root)] = root.read_bytes()
        elif root.is_dir():
            out.update({str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
    return out


def run_case(case: Case, places: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Run ``case`` and assert the shared rules; returns (stdout, stderr)."""
    if case.setup is not None:
        case.setup(places)
    argv = [str(a) for a in case.argv(places)]
    watched = [places[k] for k in case.keep]
    before = snapshot(watched)
    tmp = places["tmp"]
    listing = sorted(p.name for p in tmp.iterdir())
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out, err
    assert code == case.code, f"{argv}: exit {code}, expected {case.code}\n{err}"
    if case.code == 2:
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith("error: ") and len(lines[-1]) < 600, err
        assert sum(line.startswith("error: ") for line in lines) == 1, err
    if case.fragment:
        assert case.fragment in (err if case.stream == "err" else out), f"{case.fragment!r} not in:\n{err}"
    assert snapshot(watched) == before, "a file that was there before changed"
    if case.code != 0:  # nothing half-written: no new file or folder, hidden ones included
        assert sorted(p.name for p in tmp.iterdir()) == listing, "something new was written"
    return out, err


Places = dict[str, Path]


def put(name: str, content: object = b"") -> Callable[[Places], Path]:
    """A function of the places that writes ``tmp/<name>`` and returns its path: ``content`` is text
    (written as UTF-8), bytes, or a function of the places giving either; a name ending in ``/`` is a
    folder."""

    def make(p: Places) -> Path:
        path = p["tmp"] / name
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
            return path
        data = content(p) if callable(content) else content
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)  # type: ignore[arg-type]
        return path

    return make


def folder(p: Places) -> Path:
    """A folder where a file belongs: ``tmp/a_folder``."""
    return put("a_folder/")(p)
