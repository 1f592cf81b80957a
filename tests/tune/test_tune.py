"""``lstmkit <task> tune``: a tiny search for every task (the best model loads and predicts, its
best_config.toml trains), pruning of a run built to be bad, resuming after kill -9, bad input."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

import lstmkit  # noqa: E402
from lstmkit.cli.main import main  # noqa: E402
from lstmkit.config import read_toml  # noqa: E402
from lstmkit.tasks import get_spec  # noqa: E402
from lstmkit.tune.journal import STUDY  # noqa: E402

FAST = ["--epochs", "2", "--patience", "0", "--device", "cpu", "--threads", "1"]
FORECAST = ["--lookback", "24", "--horizon", "6", "--hidden-size", "16"]


# ------------------------------------------------------------------------------------ tiny data sets
def _forecast(d: Path) -> tuple[list[str], list[str], str]:
    n = 300
    t = np.arange(n)
    rng = np.random.default_rng(0)
    values = np.sin(t / 6) + 0.1 * rng.standard_normal(n)
    pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"), "value": values}).to_csv(
        d / "f.csv", index=False
    )
    return ["--data", str(d / "f.csv")], FORECAST, str(d / "f.csv")


def _classify(d: Path) -> tuple[list[str], list[str], str]:
    rng = random.Random(0)
    words = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"]}
    for name, n in (("train", 160), ("valid", 40)):
        rows = []
        for _ in range(n):
            y = rng.choice(["pos", "neg"])
            text = [rng.choice(["the", "a", "movie", "was", "it"]) for _ in range(rng.randint(1, 6))]
            text.insert(rng.randrange(len(text) + 1), rng.choice(words[y]))
            rows.append(f"{' '.join(text)}\t{y}")
        (d / f"{name}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (d / "texts.txt").write_text("a great movie\nawful\n", encoding="utf-8")
    args = ["--data", str(d / "train.tsv"), "--valid", str(d / "valid.tsv")]
    return args, ["--hidden-size", "16", "--embed-size", "16"], str(d / "texts.txt")


def _lm(d: Path) -> tuple[list[str], list[str], str]:
    rng = random.Random(0)
    sentences = ["the cat sat on the mat .", "the dog ate the bone .", "a bird sang in the tree ."]
    (d / "train.txt").write_text("\n".join(rng.choice(sentences) for _ in range(200)) + "\n", encoding="utf-8")
    (d / "prompts.txt").write_text("the cat\n", encoding="utf-8")
    flags = ["--hidden-size", "16", "--embed-size", "16", "--batch-size", "8", "--length", "3"]
    return ["--data", str(d / "train.txt")], flags[:6], str(d / "prompts.txt")


def _tag(d: Path) -> tuple[list[str], list[str], str]:
    rng = random.Random(0)
    names = {"PER": [["John"], ["Mary", "Smith"]], "LOC": [["Paris"], ["New", "York"]]}
    for name, n in (("train", 60), ("valid", 20)):
        lines = []
        for _ in range(n):
            typ = rng.choice(["PER", "LOC"])
            toks = [rng.choice(["we", "saw", "met", "in"]) for _ in range(rng.randint(1, 3))]
            ent = rng.choice(names[typ])
            lines += [f"{t} X O" for t in toks] + [f"{t} X I-{typ}" for t in ent] + [". X O", ""]
        (d / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (d / "raw.txt").write_text("we met John in Paris .\n", encoding="utf-8")
    flags = ["--hidden-size", "16", "--embed-size", "16", "--char-dim", "8", "--char-hidden", "8"]
    return ["--data", str(d / "train.txt"), "--valid", str(d / "valid.txt")], flags, str(d / "raw.txt")


def _translate(d: Path) -> tuple[list[str], list[str], str]:
    rng = random.Random(0)
    lex = {"der": "the", "ein": "a", "hund": "dog", "katze": "cat", "sieht": "sees", "mag": "likes"}
    for name, n in (("train", 120), ("valid", 30)):
        rows = []
        for _ in range(n):
            src = [rng.choice(["der", "ein"]), rng.choice(["hund", "katze"]), rng.choice(["sieht", "mag"])]
            src += [rng.choice(["der", "ein"]), rng.choice(["hund", "katze"])]
            rows.append(" ".join(src) + "\t" + " ".join(lex[w] for w in src))
        (d / f"{name}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (d / "src.txt").write_text("der hund sieht ein katze\n", encoding="utf-8")
    flags = ["--hidden-size", "16", "--embed-size", "16", "--tokenizer", "whitespace", "--vocab-size", "50"]
    return ["--data", str(d / "train.tsv"), "--valid", str(d / "valid.tsv")], flags, str(d / "src.txt")


def _speech(d: Path) -> tuple[list[str], list[str], str]:
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    rows = [["path", "text"]]
    for i in range(8):
        for label, hz in (("a", 300.0), ("b", 1000.0), ("c", 2500.0)):
            t = np.arange(800) / 8000
            wave = 0.5 * np.sin(2 * np.pi * hz * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(d / f"{label}{i}.wav", wave.astype(np.float32), 8000)
            rows.append([f"{label}{i}.wav", label])
    with open(d / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    flags = ["--hidden-size", "16", "--num-layers", "1", "--sample-rate", "8000", "--valid-fraction", "0.25"]
    return ["--data", str(d / "train.csv")], [*flags, "--batch-size", "8"], str(d / "a0.wav")


DATA = {
    "forecast": _forecast,
    "classify": _classify,
    "lm": _lm,
    "tag": _tag,
    "translate": _translate,
    "speech": _speech,
}


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def _study(journal: Path):
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name=STUDY, storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal))))


# ------------------------------------------------------------------------------------ every task
@pytest.mark.parametrize("task", list(DATA))
def test_tiny_tune_for_every_task(task, tmp_path, capsys):
    data, flags, inputs = DATA[task](tmp_path)
    out = tmp_path / "tune"
    args = [task, "tune", *data, *flags, *FAST, "--trials", "2", "--max-time", "60", "--out", str(out), "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1"] and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert rows[0]["state"] == "COMPLETE" and "starting settings" in rows[0]["note"]
    assert result["best"]["folder"] == str(out / "best") and (out / "history.png").is_file()
    # the best folder is a normal model folder: it loads, and predicts from the command line
    assert isinstance(lstmkit.load(out / "best"), lstmkit.tasks.base.Predictor)
    assert main([task, "predict", "--model", str(out / "best"), "--data", inputs, "--threads", "1"]) == 0
    assert capsys.readouterr().out.strip()
    # best_config.toml holds the fixed flags and the best trial's settings, and trains as --config
    best = read_toml(out / "best_config.toml", get_spec(task).config)
    assert best["epochs"] == 2 and best["hidden_size"] == 16
    for name, value in result["best"]["params"].items():
        assert best.get(name, get_spec(task).config().flat()[name]) == pytest.approx(value)
    again = [task, "train", *data, "--config", str(out / "best_config.toml"), "--threads", "1", "--quiet"]
    assert main([*again, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "model.safetensors").is_file()


# ------------------------------------------------------------------------------------ pruning
def test_a_run_with_an_absurd_learning_rate_is_pruned(tmp_path, capsys):
    """The first trial runs the defaults (lr 0.001); the seeded sampler then draws lr 30 for trial 1,
    whose first-epoch validation loss is far above the median of the runs before it."""
    data, flags, _ = _forecast(tmp_path)
    (tmp_path / "space.toml").write_text("lr = {choices = [0.001, 30.0]}\n", encoding="utf-8")
    out = tmp_path / "tune"
    args = ["forecast", "tune", *data, *flags, *FAST, "--epochs", "3", "--trials", "4", "--seed", "1"]
    assert main([*args, "--space", str(tmp_path / "space.toml"), "--out", str(out)]) == 0
    rows = _rows(out)
    bad = [r for r in rows if r["lr"] == "30"]
    assert bad and all(r["state"] == "PRUNED" and r["epochs"] == "1" for r in bad)
    assert all(float(r["value"]) > 10 * float(rows[0]["value"]) for r in bad)
    assert rows[0]["state"] == "COMPLETE" and rows[0]["lr"] == "0.001"
    assert "pruned" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ kill -9, --resume
def test_a_killed_tune_resumes_without_repeating_finished_trials(tmp_path, capsys):
    data, flags, _ = _forecast(tmp_path)
    out, journal = tmp_path / "tune", tmp_path / "tune" / "journal.log"
    args = ["forecast", "tune", *data, *flags, *FAST, "--epochs", "40", "--trials", "4", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(lstmkit.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "lstmkit", *args, "--quiet"], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # one trial finished and the next one running
            time.sleep(0.05)
            trials = _study(journal).trials if journal.is_file() else []
            last = trials[-1] if trials else None  # mid-training: an epoch reported
            if (
                any(t.state.name == "COMPLETE" for t in trials)
                and last.state.name == "RUNNING"
                and last.intermediate_values
            ):
                break
        else:
            pytest.fail("no finished trial within 60s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {t.number: t for t in _study(journal).trials}
    running = [n for n, t in before.items() if t.state.name == "RUNNING"]
    assert running and any(t.state.name == "COMPLETE" for t in before.values())

    assert main([*args, "--resume"]) == 0
    assert "did not finish: run again" in capsys.readouterr().err
    after = {t.number: t for t in _study(journal).trials}
    for n, t in before.items():  # what had finished is kept as it was, never run again
        if t.state.name == "COMPLETE":
            assert after[n].state.name == "COMPLETE" and after[n].params == t.params and after[n].value == t.value
    for n in running:  # what the kill cut short is marked lost, and its settings run again
        assert after[n].state.name == "FAIL" and after[n].user_attrs["lost"]
        rerun = [t for t in after.values() if t.user_attrs.get("rerun_of") == n]
        assert len(rerun) == 1 and before[n].params.items() <= rerun[0].params.items()
    finished = _finished(after.values())
    assert len(finished) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in finished}) == 4
    assert len(_rows(out)) == len(after) and (out / "best" / "config.json").is_file()


# ------------------------------------------------------------------------------------ --workers
def test_two_workers_share_one_study(tmp_path, capsys):
    data, flags, _ = _forecast(tmp_path)
    out = tmp_path / "tune"
    args = ["forecast", "tune", *data, *flags, *FAST, "--epochs", "8", "--trials", "4", "--workers", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    trials = _study(out / "journal.log").trials
    assert len(_finished(trials)) == 4 and len(_rows(out)) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in _finished(trials)}) == 4
    assert "best trial" in capsys.readouterr().out


def _finished(trials):
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]


# ------------------------------------------------------------------------------------ bad input
SPACES = {
    "hiden_size = {low = 8, high = 64}": "unknown setting 'hiden_size'",
    "dropout = {low = 0.0, high = 1.5}": "dropout: high: dropout (--dropout) must be < 1, got 1.5",
    "lr = {lo = 0.1, high = 1.0}": "lr: unknown key 'lo'",
    "num_layers = {low = 3, high = 1}": "num_layers: low 3 is above high 1",
    "dropout = {low = 0.0, high = 0.4, log = true}": "dropout: a log scale needs low > 0",
    "patch = {choices = [4, -1]}": "patch: choices: patch (--patch) must be >= 0, got -1",
    "num_layers = {low = 1.5, high = 3}": "num_layers: low: num_layers (--num-layers) must be an integer",
    "hidden_size = {low = 8, high = 64}": "hidden_size: fixed by a flag or --config",
    "max_time = {low = 1, high = 2}": "max_time: cannot be searched",
    "norm = {low = 1, high = 2}": "norm: not a number",
    "dropout = 3": "dropout: expected a table",
    "lr = [": "invalid TOML",
}


@pytest.mark.parametrize("text", list(SPACES))
def test_a_bad_space_is_one_line_naming_the_key(text, tmp_path, capsys):
    data, flags, _ = _forecast(tmp_path)
    (tmp_path / "space.toml").write_text(text + "\n", encoding="utf-8")
    args = ["forecast", "tune", *data, *flags, "--space", str(tmp_path / "space.toml"), "--out", str(tmp_path / "t")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --space ") and SPACES[text] in err
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--trials", "0"], "--trials must be >= 1, got 0"),
        (["--workers", "two"], "--workers must be a whole number"),
        (["--resume"], "--resume: no journal at"),
        (["--data", "missing.csv"], "missing.csv"),
        (["--lr", "-1"], "lr (--lr) must be > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, message, tmp_path, capsys):
    data, flags, _ = _forecast(tmp_path)
    out = tmp_path / "t"
    assert main(["forecast", "tune", *data, *flags, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (out / "trials").exists()


def test_a_second_tune_into_the_same_folder_needs_resume_or_overwrite(tmp_path, capsys):
    data, flags, _ = _forecast(tmp_path)
    out = tmp_path / "t"
    out.mkdir()
    (out / "journal.log").write_text("")
    assert main(["forecast", "tune", *data, *flags, "--out", str(out)]) == 2
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert main(["forecast", "tune", *data, *flags, "--out", str(out), "--overwrite"]) == 2
    assert "holds other files (notes.txt" in capsys.readouterr().err
