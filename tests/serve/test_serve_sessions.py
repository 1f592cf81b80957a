"""Streaming sessions on a live server: a 50-step forecast, the session cap, expiry, close."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pandas as pd
from live_server import hourly_rows, metric_samples, serve

from lstmkit.io import to_jsonable


def test_a_50_step_session_equals_the_whole_sequence_forecast(forecast_predictor: Any) -> None:
    rows = hourly_rows(50)
    with serve(forecast_predictor) as (url, _):
        with httpx.Client(base_url=url) as client:
            opened = client.post("/v1/sessions")
            assert opened.status_code == 201, opened.text
            sid = opened.json()["session"]
            outputs = [client.post(f"/v1/sessions/{sid}/step", json={"inputs": r}).json()["outputs"] for r in rows]
            gauge = metric_samples(client.get("/metrics").text, "lstmkit_open_sessions")[0].value
            assert client.delete(f"/v1/sessions/{sid}").status_code == 204
            gone = client.post(f"/v1/sessions/{sid}/step", json={"inputs": rows[0]})
    assert outputs[0] == {"ready": False, "need": 11}
    assert outputs[10] == {"ready": False, "need": 1}
    assert outputs[11] == to_jsonable(forecast_predictor.predict(pd.DataFrame(rows[:12])))
    assert outputs[-1] == to_jsonable(forecast_predictor.predict(pd.DataFrame(rows)))
    assert gauge == 1
    assert gone.status_code == 404 and "no open session" in gone.json()["detail"]


def test_session_cap_gives_429_and_closing_frees_a_place(forecast_predictor: Any) -> None:
    with serve(forecast_predictor, max_sessions=2) as (url, _):
        first, second, third = (httpx.post(f"{url}/v1/sessions") for _ in range(3))
        assert (first.status_code, second.status_code, third.status_code) == (201, 201, 429)
        assert "max-sessions" in third.json()["detail"]
        assert httpx.delete(f"{url}/v1/sessions/{first.json()['session']}").status_code == 204
        assert httpx.post(f"{url}/v1/sessions", json={"options": {"keep": 30}}).status_code == 201


def test_idle_sessions_expire(forecast_predictor: Any) -> None:
    with serve(forecast_predictor, session_ttl=0.3) as (url, app):
        sid = httpx.post(f"{url}/v1/sessions").json()["session"]
        assert httpx.post(f"{url}/v1/sessions/{sid}/step", json={"inputs": hourly_rows(1)}).status_code == 200
        time.sleep(0.5)
        late = httpx.post(f"{url}/v1/sessions/{sid}/step", json={"inputs": hourly_rows(1)})
        assert late.status_code == 404 and late.headers["content-type"] == "application/json"
        assert len(app.state.served.sessions) == 0
        assert httpx.delete(f"{url}/v1/sessions/{sid}").status_code == 404


def test_bad_steps_and_options_are_400_and_the_session_lives_on(forecast_predictor: Any) -> None:
    with serve(forecast_predictor) as (url, _):
        sid = httpx.post(f"{url}/v1/sessions").json()["session"]
        bad = httpx.post(f"{url}/v1/sessions/{sid}/step", json={"inputs": 3})
        no_site = httpx.post(f"{url}/v1/sessions/{sid}/step", json={"inputs": {"load": 1.0}})
        missing = httpx.post(f"{url}/v1/sessions/{sid}/step", json={})
        good = httpx.post(f"{url}/v1/sessions/{sid}/step", json={"inputs": hourly_rows(12)})
        option = httpx.post(f"{url}/v1/sessions", json={"options": {"window": 3}})
        unknown = httpx.post(f"{url}/v1/sessions/nope/step", json={"inputs": {}})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("inputs: expected a row")
    assert no_site.status_code == 400 and "series column 'site'" in no_site.json()["detail"]
    assert missing.status_code == 422 and "inputs" in missing.json()["detail"]
    assert good.status_code == 200 and isinstance(good.json()["outputs"], list)
    assert option.status_code == 400 and "options.window" in option.json()["detail"]
    assert unknown.status_code == 404


def test_a_task_without_streaming_says_so(tag_predictor: Any) -> None:
    with serve(tag_predictor) as (url, _):
        r = httpx.post(f"{url}/v1/sessions")
    assert r.status_code == 400
    assert r.json()["detail"].startswith("this model's task does not stream")
