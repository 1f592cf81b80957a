"""The ``exported`` fixture: each task's fixture model exported once per test module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from export_helpers import FIXTURES


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """``exported(task, **kw)``: the fixture model of ``task`` exported once per module (per kw)."""
    from lstmkit.export import export_model

    made: dict[tuple, Path] = {}

    def make(task: str, model: Path | None = None, **kw: Any) -> Path:
        key = (task, str(model), tuple(sorted(kw.items())))
        if key not in made:
            out = tmp_path_factory.mktemp(f"export-{task}") / "export"
            made[key] = export_model(model or FIXTURES / task, out, **kw)
        return made[key]

    return make
