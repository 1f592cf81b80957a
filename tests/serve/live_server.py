"""Test helpers: a real uvicorn server on a free loopback port in a background thread
(``serve(predictor, **settings)``: the base URL and the app), the fixture records, metric samples."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import uvicorn

from lstmkit.serve.app import create_app
from lstmkit.serve.config import ServeOptions

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def fixture_record(task: str) -> dict[str, Any]:
    """``tests/fixtures/models/<task>.json``: inputs, options and the outputs they give."""
    return json.loads((MODELS / f"{task}.json").read_text())


@contextlib.contextmanager
def serve(predictor: Any, model: str = "", runtime: str = "torch", **settings: Any) -> Iterator[tuple[str, Any]]:
    """Run ``create_app(predictor, ServeOptions(**settings))`` on 127.0.0.1:<free port>."""
    app = create_app(predictor, ServeOptions(**settings), model=model, runtime=runtime)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def metric_samples(text: str, name: str) -> list[Any]:
    """The samples of metric family ``name`` in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return [s for fam in text_string_to_metric_families(text) if fam.name == name for s in fam.samples]


def hourly_rows(n: int, site: str = "x") -> list[dict[str, Any]]:
    """``n`` hourly rows of one fixture site (its training series), smooth made-up values."""
    start = pd.Timestamp("2024-01-01")
    return [
        {
            "site": site,
            "date": str(start + pd.Timedelta(hours=i)),
            "temp": round(20 + 2 * np.sin(i / 5), 3),
            "load": round(8 + 2 * np.sin(i / 4), 3),
        }
        for i in range(n)
    ]
