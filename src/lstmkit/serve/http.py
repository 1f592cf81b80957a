"""HTTP plumbing of the app: error answers as JSON naming the field, and the request body limit.

Every error answer is ``{"detail": "<one line>"}`` (422 adds ``"errors"``: FastAPI's list, each with
its ``loc``). The kind of error is left in the request scope for :mod:`lstmkit.serve.metrics`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lstmkit.errors import LstmkitError
from lstmkit.serve.metrics import ERROR_KEY

log = logging.getLogger("lstmkit.serve")


class ApiError(Exception):
    """An answer other than 2xx: ``status``, a one-line ``detail`` and a ``kind`` for the metrics."""

    def __init__(self, status: int, detail: str, kind: str):
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def from_exception(e: BaseException) -> ApiError:
    """The answer to a predictor's exception: a user error (:class:`~lstmkit.errors.LstmkitError`)
    is 400 with its line; anything else is 500 (and logged with its traceback)."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, LstmkitError):
        return ApiError(400, one_line(e), type(e).__name__)
    log.error("internal error", exc_info=e)
    return ApiError(500, f"internal error ({type(e).__name__}: {one_line(e)})", "internal")


def error_response(request: Request, status: int, detail: str, kind: str, **extra: Any) -> JSONResponse:
    request.scope[ERROR_KEY] = kind
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _where(loc: Any) -> str:
    """FastAPI's ``("body", "inputs", 0)`` -> ``inputs[0]``; the body itself -> ``body``."""
    parts = [p for p in loc if p != "body"]
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return text or "body"


def install_errors(app: FastAPI) -> None:
    """JSON answers for ApiError, user errors, invalid bodies, HTTP errors and the unexpected."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return error_response(request, e.status, e.detail, e.kind)

    @app.exception_handler(LstmkitError)
    async def user_error(request: Request, e: LstmkitError) -> JSONResponse:
        return error_response(request, 400, one_line(e), type(e).__name__)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(e.errors(), exclude={"input", "url"})
        lines = []
        for err in errors:
            ctx = err.get("ctx", {}).get("error") if err.get("type") == "json_invalid" else None
            lines.append(f"{_where(err.get('loc', ()))}: {err.get('msg', 'invalid')}" + (f" ({ctx})" if ctx else ""))
        return error_response(request, 422, "; ".join(lines) or "invalid request", "validation", errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        kind = "body_too_large" if e.status_code == 413 else f"http_{e.status_code}"
        return error_response(request, e.status_code, str(e.detail), kind)


class BodyLimit:
    """ASGI middleware: a request body over ``max_body`` bytes is answered 413, by its
    Content-Length before anything is read, or while it is read (chunked bodies)."""

    def __init__(self, app: Any, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.max_body):
            status = 413 if length.strip().isdigit() else 400
            scope[ERROR_KEY] = "body_too_large" if status == 413 else "bad_content_length"
            detail = f"request body over --max-body {self.max_body} bytes" if status == 413 else "bad Content-Length"
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # raised inside the body read: FastAPI passes HTTPException on
                    raise HTTPException(413, f"request body over --max-body {self.max_body} bytes")
            return dict(message)

        await self.app(scope, limited, send)
