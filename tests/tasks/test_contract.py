"""The one contract every task keeps: one CLI shape, settings declared once, one Python API, a
model folder format that keeps loading. Each test runs for all six tasks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import lstmkit
from lstmkit import tasks
from lstmkit.cli.main import main
from lstmkit.io import to_jsonable

TASKS = list(tasks.TASKS)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def tiny_data(task: str, folder: Path) -> list[str]:
    """The smallest valid training input of each task, as command-line arguments."""
    if task == "forecast":
        rows = "\n".join(f"{t},{math.sin(t / 5):.4f},{math.cos(t / 7):.4f}" for t in range(300))
        (folder / "s.csv").write_text("t,a,b\n" + rows + "\n")
        return ["--data", str(folder / "s.csv")]
    if task == "classify":
        (folder / "c.tsv").write_text("sentence\tlabel\ngood film\t1\nbad film\t0\nfine\t1\nawful\t0\n")
        return ["--data", str(folder / "c.tsv")]
    if task == "lm":
        (folder / "t.txt").write_text("the cat sat on the mat\n" * 20)
        return ["--data", str(folder / "t.txt")]
    if task == "tag":
        (folder / "t.conll").write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nlives O\n\nin O\nParis B-LOC\n")
        return ["--data", str(folder / "t.conll")]
    if task == "translate":
        (folder / "p.tsv").write_text("ein hund\ta dog\neine katze\ta cat\nein mann\ta man\n")
        return ["--data", str(folder / "p.tsv")]
    if task == "speech":
        import numpy as np
        import soundfile as sf

        rng = np.random.default_rng(0)
        lines = ["path,text"]
        for i in range(4):
            sf.write(folder / f"{i}.wav", rng.normal(0, 0.1, 4000).astype("float32"), 8000)
            lines.append(f"{i}.wav,{'yes' if i % 2 else 'no'}")
        (folder / "m.csv").write_text("\n".join(lines) + "\n")
        return ["--data", str(folder / "m.csv")]
    raise AssertionError(task)


@pytest.mark.parametrize("task", TASKS)
def test_dry_run_prints_the_api_defaults(task, tmp_path, capsys):
    args = tiny_data(task, tmp_path)
    assert main([task, "train", *args, "--out", str(tmp_path / "m"), "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    paths = printed.pop("paths")
    assert paths["out"] == str(tmp_path / "m")
    assert printed == json.loads(json.dumps(lstmkit.default_config(task)))
    assert not (tmp_path / "m").exists()  # a dry run writes nothing


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    ("flag", "value", "name"), [("--hidden-size", "0", "hidden"), ("--dropout", "1.5", "dropout"), ("--lr", "-1", "lr")]
)
def test_out_of_range_settings_are_one_line_naming_the_option(task, flag, value, name, tmp_path, capsys):
    args = tiny_data(task, tmp_path)
    assert main([task, "train", *args, "--out", str(tmp_path / "m"), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and name in err and "Traceback" not in err
    # the Python API refuses the same value with the same message
    with pytest.raises(lstmkit.errors.LstmkitError) as info:
        lstmkit.train(task, args[1], out=None, **{flag[2:].replace("-", "_"): float(value)})
    assert flag in str(info.value)


@pytest.mark.parametrize("task", TASKS)
def test_help_imports_neither_torch_nor_the_task(task):
    code = (
        f"import sys; from lstmkit.cli.main import main\n"
        f"for argv in (['--help'], [{task!r}, '--help'], [{task!r}, 'train', '--help'], "
        f"[{task!r}, 'predict', '--help']):\n"
        f"    assert main(argv) == 0\n"
        f"heavy = [m for m in ('torch', 'numpy', 'pandas', 'lstmkit.tasks.{task}.task') if m in sys.modules]\n"
        f"assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--hidden-size" in out.stdout and "--threads" in out.stdout


@pytest.mark.parametrize("task", TASKS)
def test_every_setting_has_help_a_default_and_one_flat_name(task):
    cfg = lstmkit.tasks.get_spec(task).config()
    leaves = cfg.leaves()
    assert len({leaf.name for leaf in leaves}) == len(leaves)
    assert all(leaf.spec.help.strip() for leaf in leaves)
    assert {"hidden_size", "num_layers", "dropout", "epochs", "lr", "batch_size", "seed"} <= set(cfg.flat())
    assert type(cfg).from_dict(cfg.to_dict()) == cfg


def _close(a, b, tol=1e-5):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    return a == b


@pytest.mark.parametrize("task", TASKS)
def test_saved_folder_of_this_format_keeps_loading(task):
    """tests/fixtures/models/<task>/ was written by this release (make_<task>.py); it must load and
    predict what it predicted when it was written."""
    folder = FIXTURES / task
    expected = json.loads((FIXTURES / f"{task}.json").read_text())
    predictor = lstmkit.load(folder)
    assert predictor.task == task and json.loads((folder / "config.json").read_text())["format_version"] == 2
    inputs = expected["inputs"]
    if expected.get("input_file"):
        inputs = FIXTURES / expected["input_file"]
    got = to_jsonable(predictor.predict(inputs, **expected.get("options", {})))
    assert _close(got, expected["outputs"]), (got, expected["outputs"])
