"""The server's Prometheus metrics, in a registry of their own (``GET /metrics``).

==============================  =========  ==============================================
``lstmkit_requests_total``      counter    requests by endpoint (route template), method, status
``lstmkit_request_seconds``     histogram  latency by endpoint, from the first byte to the answer
``lstmkit_errors_total``        counter    error answers by endpoint and kind (``DataError``,
                                           ``validation``, ``queue_full``, ``internal``, ...)
``lstmkit_open_sessions``       gauge      streaming sessions open now
``lstmkit_batch_size``          histogram  requests per predictor call of ``/v1/predict``
``lstmkit_queue_depth``         gauge      predict requests waiting for the worker
==============================  =========  ==============================================
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
ERROR_KEY = "lstmkit.error"  # scope key: the kind of an error answer, set by the exception handlers


class Metrics:
    """The metrics of one app; ``render()`` is the body of ``GET /metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "lstmkit_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "lstmkit_request_seconds", "request latency in seconds", ["endpoint"], buckets=LATENCY_BUCKETS, registry=reg
        )
        self.errors = Counter(
            "lstmkit_errors", "error answers by endpoint and kind", ["endpoint", "kind"], registry=reg
        )
        self.sessions = Gauge("lstmkit_open_sessions", "streaming sessions open now", registry=reg)
        self.batch_size = Histogram(
            "lstmkit_batch_size", "requests per predictor call of /v1/predict", buckets=BATCH_BUCKETS, registry=reg
        )
        self.queue = Gauge("lstmkit_queue_depth", "predict requests waiting for the worker", registry=reg)

    def track(self, sessions: Callable[[], float], queue: Callable[[], float]) -> None:
        """Read the open sessions and the queue depth when scraped."""
        self.sessions.set_function(sessions)
        self.queue.set_function(queue)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request by route template (``/v1/sessions/{sid}/step``,
    not the id: bounded labels), with its status, latency and error kind."""

    def __init__(self, app: Any, metrics: Metrics, routes: Callable[[], list[Any]]):
        self.app, self.metrics, self.routes = app, metrics, routes

    def endpoint(self, scope: dict[str, Any]) -> str:
        from starlette.routing import Match

        for route in self.routes():
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "other"))
        return "other"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, endpoint, status = time.perf_counter(), self.endpoint(scope), 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            m = self.metrics
            m.requests.labels(endpoint, scope["method"], str(status)).inc()
            m.latency.labels(endpoint).observe(time.perf_counter() - started)
            if status >= 400:
                m.errors.labels(endpoint, scope.get(ERROR_KEY, f"http_{status}")).inc()
