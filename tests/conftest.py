"""Shared test set-up: real-data tests and the line that says whether they ran.

A test that reads the real data sets in ``../shared/data`` is marked ``@pytest.mark.real_data("ett")``
and gets the folder from :func:`data_dir`. Where the folder is missing the test is skipped, and the
summary says how many were ("N real-data tests skipped: ../shared/data/... not found"), so a run
without the data never looks like a full run. With ``LSTMKIT_REQUIRE_DATA=1`` (set by ``.ci/run``:
CI has the data) a missing folder fails the test instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_dir(name: str) -> Path:
    """``../shared/data/<name>`` (whether or not it exists)."""
    return SHARED / name


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_data(name): reads ../shared/data/<name> (skipped where it is missing)")
    config.stash[_RAN] = 0
    config.stash[_SKIPPED] = []


_RAN = pytest.StashKey[int]()
_SKIPPED = pytest.StashKey[list]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("real_data"):
        folder = data_dir(mark.args[0])
        if folder.exists():
            item.config.stash[_RAN] += 1
            continue
        if os.environ.get("LSTMKIT_REQUIRE_DATA") == "1":
            pytest.fail(f"real data: {folder} not found (LSTMKIT_REQUIRE_DATA=1)")
        item.config.stash[_SKIPPED].append(mark.args[0])
        pytest.skip(f"real data: {folder} not found")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash[_SKIPPED]
    if skipped:
        names = ", ".join(sorted(set(skipped)))
        terminalreporter.write_line(
            f"{len(skipped)} real-data tests skipped: {SHARED} not found for {names}", yellow=True
        )
    elif config.stash[_RAN]:
        terminalreporter.write_line(f"{config.stash[_RAN]} real-data tests ran on {SHARED}")
