"""Trainer tests that need other processes: exact resume after SIGKILL, and 2-process DDP (gloo, CPU)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spine_toy as toy
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("spine_toy.py")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_resume_after_sigkill_equals_uninterrupted(tmp_path, one_thread):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), "--epochs", "4", "--sleep", "0.1"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ckpt = out / "checkpoint" / "state.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert ckpt.exists(), err.decode()[-2000:]
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "result.json").exists()

    resumed_model, resumed = toy.train(str(out), epochs=4, resume=True)
    full_model, full = toy.train(str(tmp_path / "full"), epochs=4)
    assert resumed.history == full.history and resumed.best_metrics == full.best_metrics
    for (k, a), b in zip(resumed_model.state_dict().items(), full_model.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_two_process_ddp_equals_single_process(tmp_path, one_thread):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        str(SCRIPT),
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "8",
    ]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ddp_weights = load_file(str(out / "weights.safetensors"))
    ddp = json.loads((out / "result.json").read_text())
    # validation metrics are identical on every rank
    assert (out / "best_rank0.json").read_text() == (out / "best_rank1.json").read_text()

    single_model, single = toy.train(str(tmp_path / "single"), epochs=2, batch_size=8)
    # 50 examples, global batch 8: the last batch (2 examples) is split 1 + 1; same global math.
    for k, v in single_model.state_dict().items():
        torch.testing.assert_close(ddp_weights[k], v, rtol=1e-4, atol=1e-5)
    for key in ("train_loss", "valid_loss", "mae"):
        assert ddp["best"][key] == pytest.approx(single.best_metrics[key], rel=1e-4)
