"""The batcher with stand-in predictors: a full queue is 503, a predictor bug is 500, a bad request
in a batch fails alone, seeded requests are never joined."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from live_server import metric_samples, serve

from lstmkit.errors import DataError
from lstmkit.serve.batching import Batcher, Job


class Echo:
    """A predictor answering ``item * 2``; ``"slow"`` sleeps, ``"bad"`` is a user error, ``"bug"`` a bug."""

    task = "echo"

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def predict(self, items: list[Any], **options: Any) -> list[Any]:
        self.calls.append(list(items))
        if "bad" in items:
            raise DataError(f"input {items.index('bad') + 1}: bad item")
        if "bug" in items:
            raise RuntimeError("the predictor broke")
        if "slow" in items:
            time.sleep(0.5)
        return [item * 2 for item in items]


def fire(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body to /v1/predict at the same moment, from one thread each."""
    start, answers = threading.Barrier(len(bodies)), [None] * len(bodies)

    def client(i: int) -> None:
        start.wait()
        answers[i] = httpx.post(f"{url}/v1/predict", json=bodies[i], timeout=30)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers  # type: ignore[return-value]


def test_a_bad_request_fails_alone_and_the_batch_is_answered() -> None:
    echo = Echo()
    bodies = [{"inputs": ["bad" if i == 3 else f"x{i}", i]} for i in range(8)]
    with serve(echo, max_wait_ms=100) as (url, _):
        answers = fire(url, bodies)
    for i, r in enumerate(answers):
        if i == 3:
            assert r.status_code == 400 and r.json() == {"detail": "input 1: bad item"}
        else:
            assert r.status_code == 200 and r.json() == {"outputs": [f"x{i}x{i}", 2 * i]}
    assert max(len(c) for c in echo.calls) > 2  # joined into one call before the retry one by one


def test_a_full_queue_answers_503_and_a_predictor_bug_500() -> None:
    with serve(Echo(), max_queue=1, max_batch=1, max_wait_ms=0) as (url, _):
        answers = fire(url, [{"inputs": ["slow"]}] * 6)
        bug = httpx.post(f"{url}/v1/predict", json={"inputs": ["bug"]})
        text = httpx.get(f"{url}/metrics").text
    codes = sorted(r.status_code for r in answers)
    assert 200 in codes and 503 in codes and set(codes) == {200, 503}
    busy = next(r for r in answers if r.status_code == 503)
    assert "try again later" in busy.json()["detail"] and busy.headers["retry-after"] == "1"
    assert bug.status_code == 500 and bug.json()["detail"] == "internal error (RuntimeError: the predictor broke)"
    errors = {s.labels["kind"]: s.value for s in metric_samples(text, "lstmkit_errors") if s.name.endswith("_total")}
    assert errors == {"queue_full": codes.count(503), "internal": 1}


def test_groups_join_equal_options_and_keep_seeded_requests_alone() -> None:
    def job(**options: Any) -> Job:
        return Job(None, options, future=None)  # type: ignore[arg-type]  # grouping reads the options only

    jobs = [job(), job(nbest=2), job(), job(seed=1), job(seed=1), job(nbest=2)]
    groups = Batcher.groups(jobs)
    assert [[jobs.index(j) for j in g] for g in groups] == [[0, 2], [1, 5], [3], [4]]
