"""``lstmkit serve``: a trained model as an HTTP JSON API (FastAPI + uvicorn).

::

    lstmkit serve --model runs/etth1 --port 8000
    curl -s localhost:8000/v1/predict -d '{"inputs": [{"date": "...", "OT": 1.5}, ...]}'

=========================================  ==================================================
``POST /v1/predict``                        ``{"inputs": [...], "options": {...}}`` -> ``{"outputs": [...]}``;
                                            concurrent requests are micro-batched (:mod:`.batching`)
``POST /v1/sessions``                       open a streaming session (``predictor.stream()``)
``POST /v1/sessions/{id}/step``             ``{"inputs": ...}`` -> ``{"outputs": ...}``
``DELETE /v1/sessions/{id}``                close it (sessions also expire when idle)
``GET /health``, ``GET /metrics``           status; Prometheus text format
``GET /docs``                               the OpenAPI documentation
=========================================  ==================================================

Modules: :mod:`.config` (the command's options, imported by the command line), :mod:`.model`
(:func:`load_any`: a model folder or an export folder), :mod:`.inputs` (JSON -> what each task's
predictor takes), :mod:`.batching`, :mod:`.sessions`, :mod:`.metrics`, :mod:`.app`
(:func:`create_app`) and :mod:`.command` (``run``). Importing this package imports neither FastAPI
nor torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "load_any"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from lstmkit.serve.app import create_app

        return create_app
    if name == "load_any":
        from lstmkit.serve.model import load_any

        return load_any
    raise AttributeError(f"module 'lstmkit.serve' has no attribute {name!r}")
