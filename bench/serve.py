"""Load test of ``lstmkit serve`` on a forecast model (run by hand; writes bench/results/serve.md).

Starts ``lstmkit serve`` as a subprocess on a free loopback port, fires ``--requests`` single-series
forecasts (``POST /v1/predict``, one table of the last rows of the first series of ``--data``) from
``--concurrency`` clients, then times a ``--steps``-step streaming session (one row per step), and
writes the command, the machine, throughput, p50/p99 latency, errors and the server's mean
batch size (from ``/metrics``). Client and server share the machine's cores; loopback only, and the
run stops by itself.

``--client stdlib`` (default): one thread per request in flight, each with its own keep-alive
``http.client`` connection (the lightest client Python has: it measures the server, as wrk or ab
would); ``--client httpx``: an httpx AsyncClient (about 2 ms more per request on a 2-core machine).

    .venv/bin/python bench/serve.py                    # 5,000 requests, 16 concurrent, fixture model
    .venv/bin/python bench/serve.py --requests 300     # a smoke test of the script
    .venv/bin/python bench/serve.py --concurrency 1 --requests 1000   # latency, one request at a time
    .venv/bin/python bench/serve.py --model runs/etth1 --data etth1.csv --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "models"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(FIXTURES / "forecast"), help="forecast model folder (default: fixture)")
    p.add_argument("--data", default=str(FIXTURES / "forecast_input.csv"), help="CSV with the training columns")
    p.add_argument("--requests", type=int, default=5000, help="predict requests in the load test")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    p.add_argument("--steps", type=int, default=50, help="steps of the streaming session")
    p.add_argument("--client", choices=["stdlib", "httpx"], default="stdlib", help="the load test's HTTP client")
    p.add_argument("--threads", type=int, default=1, help="the server's --threads")
    p.add_argument("--max-batch", type=int, default=32, help="the server's --max-batch")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="the server's --max-wait-ms")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.md"), help="the report to write")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- inputs
def model_config(model: str) -> dict[str, Any]:
    import json

    return json.loads((Path(model) / "config.json").read_text())["config"]


def first_series(data: str, cfg: dict[str, Any]) -> pd.DataFrame:
    """The rows of the first series of ``data`` (all rows without a series column)."""
    df = pd.read_csv(data)
    sc = cfg.get("series_column")
    return df[df[sc] == df[sc].iloc[0]].reset_index(drop=True) if sc else df


def stream_rows(series: pd.DataFrame, cfg: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` rows for the session: the series' values cycled, its time column continued at its
    median step (so that any ``--steps`` fits whatever the table's length)."""
    rows = series.iloc[[i % len(series) for i in range(n)]].reset_index(drop=True)
    tc = cfg.get("time_column")
    if tc:
        t = pd.to_datetime(series[tc])
        step = t.diff().median()
        rows[tc] = [str(t.iloc[0] + step * i) for i in range(n)]
    return records(rows)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    import json

    return json.loads(df.to_json(orient="records", date_format="iso"))


# ---------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int, log: Any) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "lstmkit", "serve", "--model", args.model, "--port", str(port)]
    cmd += ["--threads", str(args.threads), "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start (log: {log.name})")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---------------------------------------------------------------------------- load
async def load_test(url: str, body: dict[str, Any], n: int, concurrency: int) -> dict[str, Any]:
    """``n`` POST /v1/predict from ``concurrency`` workers: latencies (s), errors, wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    answers: set[str] = set()
    todo = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in todo:
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/predict", json=body)
            except httpx.HTTPError as e:
                errors.append(type(e).__name__)
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(str(r.status_code))
            else:
                answers.add(r.text)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        for _ in range(min(20, n)):  # warm-up, not counted
            await client.post("/v1/predict", json=body)
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "wall": wall, "distinct": len(answers)}


def load_test_stdlib(url: str, body: dict[str, Any], n: int, concurrency: int) -> dict[str, Any]:
    """``load_test`` with ``concurrency`` threads, each on its own keep-alive http.client connection."""
    host, port = url.removeprefix("http://").split(":")
    payload, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors: list[str] = []
    answers: set[bytes] = set()
    todo, lock = iter(range(n)), threading.Lock()

    def post(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        conn.request("POST", "/v1/predict", body=payload, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                if next(todo, None) is None:
                    break
            t0 = time.perf_counter()
            try:
                status, text = post(conn)
            except (OSError, http.client.HTTPException) as e:
                errors.append(type(e).__name__)
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            latencies.append(time.perf_counter() - t0)
            if status == 200:
                answers.add(text)
            else:
                errors.append(str(status))
        conn.close()

    warm = http.client.HTTPConnection(host, int(port), timeout=60)
    for _ in range(min(20, n)):  # warm-up, not counted
        post(warm)
    warm.close()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "wall": wall, "distinct": len(answers)}


def session_test(url: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One streaming session, one row per step: each step's latency (s) and the last answer's kind."""
    with httpx.Client(base_url=url, timeout=60) as client:
        sid = client.post("/v1/sessions").raise_for_status().json()["session"]
        latencies, ready = [], 0
        for row in rows:
            t0 = time.perf_counter()
            out = client.post(f"/v1/sessions/{sid}/step", json={"inputs": row}).raise_for_status().json()["outputs"]
            latencies.append(time.perf_counter() - t0)
            ready += isinstance(out, list)
        client.delete(f"/v1/sessions/{sid}")
    return {"latencies": latencies, "ready": ready}


def batch_stats(url: str) -> tuple[float, float]:
    """(predictor calls, requests) from the server's lstmkit_batch_size histogram."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics").text
    got = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return got.get("lstmkit_batch_size_count", 0.0), got.get("lstmkit_batch_size_sum", 0.0)


# ---------------------------------------------------------------------------- report
def server_stack() -> str:
    """uvicorn's event loop and HTTP parser here (uvloop and httptools when installed: uvicorn[standard])."""
    import importlib.util

    loop = f"uvloop {version('uvloop')}" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = f"httptools {version('httptools')}" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop}, {parser}"


def quantile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] if s else float("nan")


def report(args: argparse.Namespace, argv: list[str], load: dict[str, Any], sess: dict[str, Any], batches: Any) -> str:
    lat, calls, served = load["latencies"], batches[0], batches[1]
    ms = lambda x: f"{1000 * x:.1f}"
    cmd = "bench/serve.py" + (" " + shlex.join(argv) if argv else "")
    lines = [
        "# lstmkit serve load test (bench/serve.py)",
        "",
        f"Run: `{cmd}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (client and server share them), "
        f"Python {platform.python_version()}, torch {version('torch')}, fastapi {version('fastapi')}, "
        f"uvicorn {version('uvicorn')}; client: "
        + (
            f"httpx {version('httpx')} AsyncClient."
            if args.client == "httpx"
            else "http.client, one keep-alive connection per thread."
        )
        + f" Server loop: {server_stack()}.",
        f"Server: `lstmkit serve --model {args.model} --threads {args.threads} --max-batch {args.max_batch} "
        f"--max-wait-ms {args.max_wait_ms}` on loopback.",
        "",
        f"## POST /v1/predict: one single-series forecast per request, {args.concurrency} in flight",
        "",
        "| requests | errors | wall s | requests/s | p50 ms | p99 ms | mean batch (requests per predictor call) |",
        "|---|---|---|---|---|---|---|",
        f"| {args.requests} | {len(load['errors'])} "
        f"| {load['wall']:.1f} | {args.requests / load['wall']:.0f} | {ms(quantile(lat, 0.5))} | {ms(quantile(lat, 0.99))} "
        f"| {served / calls if calls else float('nan'):.2f} ({served:.0f} / {calls:.0f}, warm-up included) |",
        "",
        f"Distinct answers to the identical request: {load['distinct']} (1 expected)."
        + (f" Errors by kind: {dict(Counter(load['errors']))}." if load["errors"] else ""),
        "",
        f"## Streaming session: {len(sess['latencies'])} steps, one row each, one client",
        "",
        "| steps | forecasts | p50 ms | p99 ms | mean ms | total s |",
        "|---|---|---|---|---|---|",
        f"| {len(sess['latencies'])} | {sess['ready']} | {ms(quantile(sess['latencies'], 0.5))} "
        f"| {ms(quantile(sess['latencies'], 0.99))} | {ms(sum(sess['latencies']) / len(sess['latencies']))} "
        f"| {sum(sess['latencies']):.2f} |",
        "",
        "Latency is measured by the client, from sending the request to reading the whole answer.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg = model_config(args.model)
    series = first_series(args.data, cfg)
    body = {"inputs": records(series.iloc[-max(cfg["lookback"], 1) :])}
    rows = stream_rows(series, cfg, args.steps)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w+b", prefix="lstmkit-serve-", suffix=".log", delete=False) as log:
        proc = start_server(args, port, log)
        try:
            if args.client == "httpx":
                load = asyncio.run(load_test(url, body, args.requests, args.concurrency))
            else:
                load = load_test_stdlib(url, body, args.requests, args.concurrency)
            sess = session_test(url, rows)
            batches = batch_stats(url)
        finally:
            stop_server(proc)
    text = report(args, argv, load, sess, batches)
    Path(args.out).write_text(text)
    print(text, end="")
    print(f"wrote {args.out} (server log: {log.name})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
