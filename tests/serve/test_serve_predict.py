"""POST /v1/predict on a live server: the same outputs as the Python predictor, batching, errors."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pandas as pd
from live_server import MODELS, fixture_record, metric_samples, serve

from lstmkit.io import to_jsonable


def test_forecast_predict_matches_the_predictor(forecast_predictor: Any, forecast_rows: list[dict]) -> None:
    one_site = [r for r in forecast_rows if r["site"] == "x"]
    with serve(forecast_predictor, model=str(MODELS / "forecast")) as (url, _):
        one = httpx.post(f"{url}/v1/predict", json={"inputs": forecast_rows})
        many = httpx.post(f"{url}/v1/predict", json={"inputs": [forecast_rows, one_site]})
        health = httpx.get(f"{url}/health").json()
    assert one.status_code == 200, one.text
    assert one.json()["outputs"] == to_jsonable(forecast_predictor.predict(pd.DataFrame(forecast_rows)))
    assert one.json()["outputs"] == fixture_record("forecast")["outputs"]
    want = forecast_predictor.predict([pd.DataFrame(forecast_rows), pd.DataFrame(one_site)])
    assert many.json()["outputs"] == to_jsonable(want)
    assert health == {"status": "ok", "task": "forecast", "model": str(MODELS / "forecast"), "runtime": "torch"}


def test_tag_predict_matches_the_predictor(tag_predictor: Any) -> None:
    record = fixture_record("tag")
    with serve(tag_predictor) as (url, _):
        got = httpx.post(f"{url}/v1/predict", json={"inputs": record["inputs"], "options": record["options"]})
        plain = httpx.post(f"{url}/v1/predict", json={"inputs": "EU rejects German call"})
    assert got.status_code == 200, got.text
    assert got.json()["outputs"] == to_jsonable(tag_predictor.predict(record["inputs"], **record["options"]))
    assert got.json()["outputs"] == record["outputs"]
    assert plain.json()["outputs"] == to_jsonable(tag_predictor.predict("EU rejects German call"))


def test_concurrent_requests_are_batched_and_answered_each(forecast_predictor: Any, forecast_rows: list) -> None:
    """16 clients at once, each a different table: one answer each, its own, and batches above 1."""
    tables = [[r for r in forecast_rows if r["site"] == site][k : k + 12] for k in range(4) for site in "xy"]
    tables = (tables * 2)[:16]
    start, answers = threading.Barrier(16), [None] * 16

    def client(i: int) -> None:
        start.wait()
        answers[i] = httpx.post(f"{url}/v1/predict", json={"inputs": tables[i]}, timeout=30).json()

    with serve(forecast_predictor, max_wait_ms=50) as (url, _):
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        text = httpx.get(f"{url}/metrics").text
    for table, answer in zip(tables, answers):
        assert answer == {"outputs": to_jsonable(forecast_predictor.predict(pd.DataFrame(table)))}
    sizes = metric_samples(text, "lstmkit_batch_size")
    count = next(s.value for s in sizes if s.name == "lstmkit_batch_size_count")
    total = next(s.value for s in sizes if s.name == "lstmkit_batch_size_sum")
    assert total == 16 and count < 16, (count, total)  # some predictor call served more than one request


def test_metrics_count_requests(tag_predictor: Any) -> None:
    with serve(tag_predictor) as (url, _):
        for _ in range(3):
            assert httpx.get(f"{url}/health").status_code == 200
        httpx.post(f"{url}/v1/predict", json={"inputs": ["a b"]})
        httpx.post(f"{url}/v1/predict", json={"inputz": ["a b"]})
        text = httpx.get(f"{url}/metrics").text
    requests = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in metric_samples(text, "lstmkit_requests")
        if s.name == "lstmkit_requests_total"
    }
    assert requests == {("/health", "200"): 3, ("/v1/predict", "200"): 1, ("/v1/predict", "422"): 1}
    errors = {s.labels["kind"]: s.value for s in metric_samples(text, "lstmkit_errors") if s.name.endswith("_total")}
    assert errors == {"validation": 1}
    latency = [s for s in metric_samples(text, "lstmkit_request_seconds") if s.name.endswith("_count")]
    assert sum(s.value for s in latency) == 5
    assert metric_samples(text, "lstmkit_open_sessions")[0].value == 0


BAD_BODIES = [  # (body, status, words the detail holds)
    (b'{"inputs": [', 422, "JSON"),
    (b"[1, 2]", 422, "body"),
    (b'{"options": {}}', 422, "inputs"),
    (b'{"inputs": ["a"], "nbest": 2}', 422, "nbest"),
    (b'{"inputs": ["a"], "options": {"nbest": 0}}', 400, "nbest"),
    (b'{"inputs": ["a"], "options": {"bogus": 1}}', 400, "bogus"),
    (b'{"inputs": [{"a": 1}]}', 400, "input 1"),
    (b'{"inputs": ["a"], "options": {"plot": "x.png"}}', 400, "options.plot"),
]


def test_bad_requests_get_json_naming_the_field(tag_predictor: Any) -> None:
    with serve(tag_predictor) as (url, _):
        for body, status, words in BAD_BODIES:
            r = httpx.post(f"{url}/v1/predict", content=body, headers={"content-type": "application/json"})
            assert r.status_code == status, (body, r.text)
            assert r.headers["content-type"] == "application/json"
            assert words in r.json()["detail"], (body, r.text)


def test_forecast_input_errors(forecast_predictor: Any, forecast_rows: list) -> None:
    with serve(forecast_predictor) as (url, _):
        text = httpx.post(f"{url}/v1/predict", json={"inputs": "x.csv"})
        short = httpx.post(f"{url}/v1/predict", json={"inputs": forecast_rows[:5]})
        column = httpx.post(f"{url}/v1/predict", json={"inputs": [{"site": "x", "load": 1.0}] * 12})
    assert (text.status_code, short.status_code, column.status_code) == (400, 400, 400)
    assert text.json()["detail"].startswith("inputs: expected a table")
    assert "fewer than lookback" in short.json()["detail"]
    assert "column 'temp' not found" in column.json()["detail"]


def test_oversize_bodies_get_413(tag_predictor: Any) -> None:
    big = b'{"inputs": ["' + b"a " * 600 + b'"]}'
    with serve(tag_predictor, max_body=1000) as (url, _):
        declared = httpx.post(f"{url}/v1/predict", content=big, headers={"content-type": "application/json"})
        chunked = httpx.post(
            f"{url}/v1/predict",
            content=(big[i : i + 100] for i in range(0, len(big), 100)),
            headers={"content-type": "application/json"},
        )
        fine = httpx.post(f"{url}/v1/predict", json={"inputs": ["a b"]})
        text = httpx.get(f"{url}/metrics").text
    assert declared.status_code == 413 and "max-body" in declared.json()["detail"]
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and "max-body" in chunked.json()["detail"]
    assert fine.status_code == 200
    errors = {s.labels["kind"]: s.value for s in metric_samples(text, "lstmkit_errors") if s.name.endswith("_total")}
    assert errors == {"body_too_large": 2}


def test_docs_and_openapi(tag_predictor: Any) -> None:
    with serve(tag_predictor) as (url, _):
        docs = httpx.get(f"{url}/docs")
        spec = httpx.get(f"{url}/openapi.json").json()
    assert docs.status_code == 200
    assert {
        "/v1/predict",
        "/v1/sessions",
        "/v1/sessions/{sid}/step",
        "/v1/sessions/{sid}",
        "/health",
        "/metrics",
    } <= set(spec["paths"])
    assert "micro-batching" in spec["paths"]["/v1/predict"]["post"]["description"]
