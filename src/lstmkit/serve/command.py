"""``lstmkit serve --model DIR``: load the model, build the app, run uvicorn until interrupted."""

from __future__ import annotations

import socket
import sys
from typing import Any

from lstmkit.errors import LstmkitError
from lstmkit.serve.config import ServeOptions


def _need_extra() -> None:
    """One line naming the missing package when the ``serve`` extra is not installed."""
    import importlib

    for module in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise LstmkitError(f"lstmkit serve needs {module}: pip install 'lstmkit[serve]'") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a busy port or a bad address is one line, exit 2."""
    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)  # proto TCP: asyncio then sets TCP_NODELAY per connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise LstmkitError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(args: dict[str, Any], options: ServeOptions) -> int:
    """Serve ``args["model"]`` (a model or export folder) on ``options.host:options.port``."""
    _need_extra()
    import uvicorn

    from lstmkit.serve.app import create_app
    from lstmkit.serve.model import load_any, runtime_name

    model = str(args["model"])
    sock = bind(options.host, options.port)  # a busy port fails before the model loads
    try:
        predictor = load_any(model, threads=args.get("threads"))
    except BaseException:
        sock.close()
        raise
    runtime = runtime_name(model)
    app = create_app(predictor, options, model=model, runtime=runtime)
    print(
        f"serving the {predictor.task} model {model} ({runtime}) on http://{options.host}:{options.port} "
        "(API documentation: /docs; Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down gracefully, then raises the signal again
        pass
    print("stopped", file=sys.stderr)
    return 0
