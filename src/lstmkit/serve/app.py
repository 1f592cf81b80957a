"""The HTTP API of one predictor: :func:`create_app` (FastAPI; OpenAPI documentation at ``/docs``).

Streaming protocol: a predictor that streams has ``stream(**options) -> Stream``; a Stream has
``step(inputs) -> outputs`` (JSON-able in and out) and optionally ``close()``. A session is one
Stream (``ForecastPredictor.stream``: :class:`lstmkit.tasks.forecast.stream.ForecastStream`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lstmkit.io import to_jsonable
from lstmkit.serve.batching import Batcher, Overloaded
from lstmkit.serve.config import ServeOptions
from lstmkit.serve.http import ApiError, BodyLimit, from_exception, install_errors
from lstmkit.serve.inputs import check_options, task_inputs
from lstmkit.serve.metrics import Metrics, MetricsMiddleware
from lstmkit.serve.sessions import SessionLimit, SessionStore


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: Any = Field(
        ...,
        description="a list of items as the Python predictor takes them (a string is one item); forecast: "
        "one table (a list of row objects) or a list of tables; speech: waveforms (lists of float samples)",
    )
    options: dict[str, Any] = Field(default_factory=dict, description='the predict options by name, e.g. {"nbest": 2}')


class PredictResponse(BaseModel):
    outputs: Any = Field(..., description="one output per input, as `lstmkit.io.to_jsonable` writes them")


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of predictor.stream()")


class SessionResponse(BaseModel):
    session: str


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: Any = Field(..., description="this step's input (forecast: one row object or a list of rows)")


class Health(BaseModel):
    status: str
    task: str
    model: str
    runtime: str


class ErrorResponse(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 404, 413, 422, 429, 503)}


@dataclass
class Served:
    """What the routes share: the predictor and its task, the one-call-at-a-time lock, the batcher,
    the sessions, the metrics, and the model folder and runtime ``/health`` reports."""

    predictor: Any
    task: str
    lock: asyncio.Lock
    batcher: Batcher
    sessions: SessionStore
    metrics: Metrics
    model: str
    runtime: str


def create_app(
    predictor: Any, settings: ServeOptions | None = None, *, model: str = "", runtime: str = "torch"
) -> FastAPI:
    """The API of ``predictor`` (anything with ``.predict(items, **options)`` and ``.task``).

    ``model`` and ``runtime`` are what ``/health`` reports. The batching worker and the session
    sweeper run while the app does (its lifespan). ``app.state.served`` holds the parts.
    """
    opts = settings or ServeOptions()
    task = str(getattr(predictor, "task", "unknown"))
    metrics, lock = Metrics(), asyncio.Lock()  # the lock: one predictor call at a time
    batcher = Batcher(
        predictor.predict,
        lambda inputs: task_inputs(task, inputs),
        lock,
        max_batch=opts.max_batch,
        max_wait=opts.max_wait_ms / 1000,
        max_queue=opts.max_queue,
        on_batch=metrics.batch_size.observe,
    )
    store = SessionStore(opts.session_ttl, opts.max_sessions)
    metrics.track(lambda: len(store), batcher.queue.qsize)
    served = Served(predictor, task, lock, batcher, store, metrics, model, runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(batcher.run()), asyncio.create_task(store.sweeper())]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            store.close_all()

    app = FastAPI(
        title="lstmkit serve",
        description=f"A {task} model ({model or 'in memory'}, {runtime}) as a JSON API.",
        lifespan=lifespan,
    )
    install_errors(app)
    app.add_middleware(BodyLimit, max_body=opts.max_body)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: app.routes)
    add_predict(app, served)
    add_sessions(app, served)
    add_status(app, served)
    app.state.served = served
    return app


def add_predict(app: FastAPI, s: Served) -> None:
    @app.post("/v1/predict", response_model=PredictResponse, responses=ERRORS)
    async def predict(body: PredictRequest) -> JSONResponse:
        """One output per input, as the Python ``predictor.predict(inputs, **options)`` gives them.
        Concurrent requests with equal options are joined into one predictor call (micro-batching);
        503 when too many wait."""
        options = check_options(body.options)
        try:
            outputs = await s.batcher.submit(body.inputs, options)
        except Overloaded as e:
            raise ApiError(503, str(e), "queue_full") from None
        except Exception as e:
            raise from_exception(e) from None
        return JSONResponse({"outputs": outputs})


def add_sessions(app: FastAPI, s: Served) -> None:
    @app.post("/v1/sessions", response_model=SessionResponse, status_code=201, responses=ERRORS)
    async def open_session(body: SessionRequest | None = None) -> JSONResponse:
        """Open a streaming session: ``predictor.stream(**options)``. 400 when the task does not
        stream, 429 when ``--max-sessions`` are open. Sessions idle for ``--session-ttl`` close."""
        if not callable(getattr(s.predictor, "stream", None)):
            raise ApiError(400, f"this model's task does not stream ({s.task})", "no_stream")
        try:
            s.sessions.reserve()
            async with s.lock:
                stream = await asyncio.to_thread(s.predictor.stream, **(body.options if body else {}))
            sid = s.sessions.open(stream)
        except SessionLimit as e:
            raise ApiError(429, str(e), "session_limit") from None
        except TypeError as e:  # an unknown keyword of stream()
            raise ApiError(400, f"options: {e}", "TypeError") from None
        except Exception as e:
            raise from_exception(e) from None
        return JSONResponse({"session": sid}, status_code=201)

    @app.post("/v1/sessions/{sid}/step", response_model=PredictResponse, responses=ERRORS)
    async def step(sid: str, body: StepRequest) -> JSONResponse:
        """Feed one step to session ``sid``: ``{"outputs": stream.step(inputs)}`` (forecast: the
        forecast from the latest window, or ``{"ready": false, "need": k}``). 404: unknown or expired."""
        session = _session(s.sessions, sid)
        async with session.lock:
            try:
                async with s.lock:
                    outputs = await asyncio.to_thread(lambda: to_jsonable(session.stream.step(body.inputs)))
            except Exception as e:
                raise from_exception(e) from None
        session.used = s.sessions.clock()
        return JSONResponse({"outputs": outputs})

    @app.delete("/v1/sessions/{sid}", status_code=204, responses=ERRORS)
    async def close_session(sid: str) -> Response:
        """Close session ``sid`` (204); 404 when unknown or already expired."""
        session = _session(s.sessions, sid)
        async with session.lock:  # after a step in flight
            s.sessions.close(sid)
        return Response(status_code=204)


def add_status(app: FastAPI, s: Served) -> None:
    @app.get("/health", response_model=Health)
    async def health() -> dict[str, str]:
        """``ok`` while the server answers; the model's task, folder and runtime (torch or onnx)."""
        return {"status": "ok", "task": s.task, "model": s.model, "runtime": s.runtime}

    @app.get("/metrics", response_class=Response)
    async def metrics_text() -> Response:
        """Prometheus text format: requests, latency, errors, open sessions, batch sizes, queue depth."""
        return Response(s.metrics.render(), media_type=s.metrics.content_type)


def _session(store: SessionStore, sid: str) -> Any:
    try:
        return store.get(sid)
    except KeyError:
        raise ApiError(404, f"no open session {sid!r} (unknown, closed or expired)", "no_session") from None
