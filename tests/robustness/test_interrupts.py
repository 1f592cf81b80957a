"""Interruptions and kills (subprocesses: the process boundary is the point).

* SIGTERM at a random step: exit 143, a checkpoint and the best model so far; ``--resume`` then
  ends with exactly the uninterrupted run's metrics and weights (CPU, same seed).
* kill -9 at any moment of a retrain into an existing ``--out`` (during training, between the
  renames that swap the folder in): the previous model still loads and predicts byte-identically.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lstmkit
from lstmkit.cli.main import main

ROWS = [
    ("a good film", "pos"),
    ("bad film", "neg"),
    ("great fun", "pos"),
    ("awful and dull", "neg"),
    ("fine work", "pos"),
    ("poor plot", "neg"),
] * 20
ARGS = [
    "--hidden-size",
    "8",
    "--embed-size",
    "8",
    "--epochs",
    "3",
    "--batch-size",
    "8",
    "--patience",
    "0",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--quiet",
]

# Runs the CLI in a child process, one line "step N" on stdout after every optimisation step; with
# SLOW_RENAME, os.rename sleeps after moving a folder to its ".swap" name (the middle of the swap).
CHILD = textwrap.dedent("""
    import os, sys, time
    from lstmkit.tasks.classify.task import Classify
    def report(trainer):
        print("step", trainer.state.step, flush=True)
        time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
    Classify.callbacks = lambda self: [("on_batch_end", report)]
    if os.environ.get("SLOW_RENAME"):
        rename = os.rename
        def slow(a, b):
            rename(a, b)
            if str(b).endswith(".swap"):
                print("swapping", flush=True)
                time.sleep(30)
        os.rename = slow
    from lstmkit.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def data(tmp_path: Path) -> Path:
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in ROWS))
    return path


def child(argv: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def wait_for(proc: subprocess.Popen, word: str, count: int = 1) -> None:
    """Read the child's stdout until ``word`` has been seen ``count`` times."""
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(word):
            seen += 1
            if seen >= count:
                return
    raise AssertionError(f"the child ended before {word!r} #{count}: {proc.stderr.read() if proc.stderr else ''}")


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sigterm_checkpoints_and_resume_reaches_the_uninterrupted_run(tmp_path, capsys):
    train = data(tmp_path)
    full = tmp_path / "full"
    assert main(["classify", "train", "--data", str(train), "--out", str(full), *ARGS, "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    out = tmp_path / "cut"
    argv = ["classify", "train", "--data", str(train), "--out", str(out), *ARGS]
    proc = child(argv, STEP_SLEEP="0.05")
    stop_at = random.Random().randint(2, 40)  # 15 steps an epoch, 45 in all
    wait_for(proc, "step", stop_at)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "--resume" in err and "Traceback" not in err
    assert (out / "checkpoint" / "state.pt").is_file()
    lstmkit.load(out)  # the best model so far, whole
    assert main([*argv, "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed == expected, stop_at
    assert files(out)["model.safetensors"] == files(full)["model.safetensors"]


@pytest.mark.parametrize("moment", ["training", "swap"])
def test_kill_9_during_a_retrain_leaves_the_previous_model_whole(tmp_path, moment):
    train = data(tmp_path)
    out = tmp_path / "m"
    assert main(["classify", "train", "--data", str(train), "--out", str(out), *ARGS]) == 0
    before = files(out)
    texts = [t for t, _ in ROWS[:6]]
    predicted = lstmkit.load(out).predict(texts)
    argv = ["classify", "train", "--data", str(train), "--out", str(out), *ARGS, "--overwrite", "--seed", "7"]
    if moment == "training":
        proc = child(argv, STEP_SLEEP="0.05")
        wait_for(proc, "step", random.Random().randint(1, 40))
    else:
        proc = child(argv, SLOW_RENAME="1")
        wait_for(proc, "swapping")
    proc.kill()
    proc.wait(timeout=60)
    assert files(out) == before  # byte-identical: nothing of the new run reached the folder
    assert lstmkit.load(out).predict(texts) == predicted
