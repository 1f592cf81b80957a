"""Fixtures of the serve tests: the fixture models, loaded once per session (helpers: ``live_server.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

for _module in ("fastapi", "uvicorn", "httpx", "prometheus_client"):
    pytest.importorskip(_module)

from live_server import MODELS  # noqa: E402

import lstmkit  # noqa: E402


@pytest.fixture(scope="session")
def forecast_predictor() -> Any:
    return lstmkit.load(MODELS / "forecast")


@pytest.fixture(scope="session")
def tag_predictor() -> Any:
    return lstmkit.load(MODELS / "tag")


@pytest.fixture(scope="session")
def forecast_rows() -> list[dict[str, Any]]:
    """The rows of ``forecast_input.csv`` as JSON records (two sites, 16 hourly rows each)."""
    import pandas as pd

    df = pd.read_csv(MODELS / "forecast_input.csv")
    return json.loads(df.to_json(orient="records"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Any:
    """One torch thread while these tests run: the fixture models are tiny, and on a small shared
    machine a second intra-op thread only waits (4x slower steps on 2 busy cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
