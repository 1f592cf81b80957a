"""What serve runs: a model folder through lstmkit.load (torch), an export folder through
lstmkit.runtime.load (ONNX Runtime) — the same answers, and the export served where torch is absent."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from live_server import MODELS, serve

from lstmkit.errors import ModelFolderError
from lstmkit.export import export_model
from lstmkit.io import to_jsonable
from lstmkit.serve.model import load_any, runtime_name


@pytest.fixture(scope="module")
def forecast_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_model(MODELS / "forecast", tmp_path_factory.mktemp("serve") / "forecast-export")


def _close(got: Any, want: Any, atol: float = 1e-4) -> bool:
    """JSON values equal, floats within ``atol`` (ONNX Runtime against torch)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return isinstance(got, (int, float)) and abs(got - want) <= atol
    return bool(got == want)


def test_a_model_folder_loads_with_torch_an_export_with_the_runtime(forecast_export: Path) -> None:
    assert load_any(MODELS / "tag").task == "tag" and runtime_name(MODELS / "tag") == "torch"
    p = load_any(forecast_export)
    assert p.task == "forecast" and p.runtime == "onnx" and runtime_name(forecast_export) == "onnx"


def test_an_export_answers_as_the_model_folder_does(forecast_export: Path, forecast_rows: list[dict]) -> None:
    want = to_jsonable(load_any(MODELS / "forecast").predict(pd.DataFrame(forecast_rows)))
    one = [r for r in forecast_rows if r["site"] == "x"]
    with serve(load_any(forecast_export), model=str(forecast_export), runtime="onnx") as (url, _):
        got = httpx.post(f"{url}/v1/predict", json={"inputs": forecast_rows}).json()["outputs"]
        sid = httpx.post(f"{url}/v1/sessions").json()["session"]
        for row in one:
            last = httpx.post(f"{url}/v1/sessions/{sid}/step", json={"inputs": row}).json()["outputs"]
        health = httpx.get(f"{url}/health").json()
    assert _close(got, want)
    assert _close(last, to_jsonable(load_any(forecast_export).predict(pd.DataFrame(one))))
    assert health["runtime"] == "onnx"


def test_an_export_is_served_where_torch_cannot_load(forecast_export: Path, forecast_rows: list[dict]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('no torch here')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from lstmkit.cli.main import main\n"
        f"sys.exit(main(['serve', '--model', {str(forecast_export)!r}, '--port', '{port}', '--threads', '1']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        deadline, answer = time.monotonic() + 60, None
        while answer is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"inputs": forecast_rows}, timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, proc.stderr.read() if proc.poll() is not None else ""
        want = to_jsonable(load_any(MODELS / "forecast").predict(pd.DataFrame(forecast_rows)))
        assert _close(answer.json()["outputs"], want)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_broken_folders_name_the_fault(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="model folder not found"):
        load_any(tmp_path / "none")
    shutil.copytree(MODELS / "tag", tmp_path / "tag")
    (tmp_path / "tag" / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="config.json"):
        load_any(tmp_path / "tag")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "config.json").write_text(json.dumps({"format": "lstmkit-export", "task": "tag"}))
    with pytest.raises(ModelFolderError, match="config.json"):
        load_any(tmp_path / "exp")
