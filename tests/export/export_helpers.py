"""Shared pieces of the export tests: the fixture models, and running code where torch cannot load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"

#: prepended to a script: any import of torch raises, as on a machine without it
BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed here")
sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(script: str, timeout: float = 120) -> Any:
    """Run ``script`` in a fresh interpreter where ``import torch`` fails; it prints one JSON value, returned here."""
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + script], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def streamed(predictor: Any, rows: list[dict[str, Any]]) -> Any:
    """The last answer of a new stream of ``predictor`` fed ``rows`` one at a time."""
    stream = predictor.stream()
    out = None
    for row in rows:
        out = stream.step(row)
    return out


def predict_without_torch(folder: Path, table: Path) -> Any:
    """``predict`` of the export folder ``folder`` on the table file ``table``, in a fresh interpreter
    without torch, as JSON."""
    script = f"""
import json, pandas as pd
from lstmkit.io import to_jsonable
from lstmkit.runtime import load
print(json.dumps(to_jsonable(load({str(folder)!r}).predict(pd.read_csv({str(table)!r})))))
"""
    return run_without_torch(script)


def fixture_sample(task: str) -> dict[str, Any]:
    """The fixture model's recorded sample (inputs, options, outputs), ``tests/fixtures/models/<task>.json``."""
    return json.loads((FIXTURES / f"{task}.json").read_text(encoding="utf-8"))


def assert_same(got: Any, want: Any, atol: float = 1e-4, where: str = "outputs") -> None:
    """``got`` equals ``want`` after :func:`lstmkit.io.to_jsonable`: floats within ``atol``, everything
    else (labels, tags, tokens, strings, ints, keys, lengths) identical."""
    from lstmkit.io import to_jsonable

    got, want = to_jsonable(got), to_jsonable(want)
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and isinstance(want, (int, float)), f"{where}: {got!r} != {want!r}"
        assert abs(got - want) <= atol, f"{where}: {got} vs {want} (|diff| {abs(got - want):.3g} > {atol})"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_same(got[k], want[k], atol, f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, atol, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def rebuilt(task: str, **changes: Any) -> Any:
    """The fixture model of ``task`` rebuilt with ``changes`` to its settings (``lstm`` keys go to the
    LSTM section), random weights: a predictor of another variant around the same vocabularies."""
    import lstmkit
    from lstmkit import tasks

    fixture = lstmkit.load(FIXTURES / task)
    cfg = fixture.config.to_dict()
    for k, v in changes.items():
        (cfg["lstm"] if k in cfg["lstm"] else cfg)[k] = v
    cls = tasks.task_class(task)
    config = cls.spec.config.from_dict(cfg)
    model = cls(config).build(fixture.dims).eval()
    return cls.Predictor(config, model, fixture.dims, fixture.transforms)
