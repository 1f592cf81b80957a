"""``lstmkit serve``: a subprocess serves and stops on Ctrl-C; bad flags are one line, exit 2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
from live_server import MODELS

SERVE = [sys.executable, "-m", "lstmkit", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lstmkit_serve_serves_and_stops_on_ctrl_c() -> None:
    port = free_port()
    model = str(MODELS / "forecast")
    proc = subprocess.Popen(
        [*SERVE, "--model", model, "--port", str(port), "--threads", "1"], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, health = time.monotonic() + 30, None
        while health is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.2)
        assert health == {"status": "ok", "task": "forecast", "model": model, "runtime": "torch"}
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"on http://127.0.0.1:{port}" in err


def test_bad_model_and_busy_port_are_one_line_exit_2(tmp_path, capsys) -> None:
    from lstmkit.cli.main import main

    assert main(["serve", "--model", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path / 'none'}: model folder not found"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(MODELS / "tag"), "--port", str(port)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --host 127.0.0.1 --port {port}: cannot listen there")
