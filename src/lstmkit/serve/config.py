"""``lstmkit serve``'s declaration: its options and its :class:`~lstmkit.tasks.spec.Command`.

Torch- and FastAPI-free, so that ``lstmkit serve --help`` answers at once; the work is in
:mod:`lstmkit.serve.command`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit.config import Settings, setting
from lstmkit.tasks.spec import Command


@dataclass
class ServeOptions(Settings):
    """Where to listen, how to batch, how many sessions and how large a request."""

    title = "serve"

    host: str = setting("127.0.0.1", help="address to listen on (0.0.0.0: every interface; default: loopback only)")
    port: int = setting(8000, ge=1, le=65535, help="TCP port")
    max_batch: int = setting(32, ge=1, help="requests joined into one predictor call at most")
    max_wait_ms: float = setting(
        2.0, ge=0, help="how long the first request of a batch waits for others to join, in milliseconds"
    )
    max_queue: int = setting(1024, ge=1, help="predict requests waiting at most; beyond that the answer is 503")
    session_ttl: float = setting(600.0, gt=0, help="seconds a streaming session may stay idle before it is closed")
    max_sessions: int = setting(1000, ge=1, help="open streaming sessions at most; beyond that the answer is 429")
    max_body: int = setting(1_048_576, ge=1, help="the largest request body in bytes; larger ones get 413")


SERVE = Command(
    name="serve",
    help="serve a model folder (or an export folder) as an HTTP JSON API: POST /v1/predict (micro-batched), "
    "streaming sessions, /health, /metrics and the OpenAPI docs at /docs",
    run="lstmkit.serve.command:run",
    options=ServeOptions,
    model=True,
)
