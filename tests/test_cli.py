"""The command line: version and help, --config TOML precedence, one-line errors, hints, inspect.

The generic commands are exercised through the classify task (small and fast); what every task
shares is checked for all six in tests/tasks/test_contract.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import pytest

from lstmkit.cli.main import main
from lstmkit.io import dumps_json

VERSION = version("lstmkit")


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "train.tsv"
    rows = ["good film\tpos", "bad film\tneg", "great\tpos", "awful\tneg"] * 6
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    return path


def dry_run(capsys, *argv):
    assert main(["classify", "train", *argv, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit):
        raise SystemExit(main(["--version"]))
    assert capsys.readouterr().out.strip() == f"lstmkit {VERSION}"
    run = subprocess.run([sys.executable, "-m", "lstmkit", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == f"lstmkit {VERSION}"


def test_help_at_every_level(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert all(name in top for name in ("forecast", "classify", "lm", "tag", "translate", "speech", "quickstart"))
    assert main(["classify", "train", "--help"]) == 0
    text = capsys.readouterr().out
    for piece in (
        "--hidden-size N",
        "units per direction",
        "(default: 128)",
        "[>= 1]",
        "--max-time SECONDS",
        "--bidirectional, --no-bidirectional",
        "(default: true)",
        "--dry-run",
        "--threads N",
        "--debug",
    ):
        assert piece in text, piece
    assert main([]) == 2 and "<command>" in capsys.readouterr().err  # no command: the help, exit 2
    assert main(["classify"]) == 2 and "train" in capsys.readouterr().err  # no action: the task's help


def test_config_file_flat_and_in_tables_with_flags_winning(tmp_path, tsv, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text('epochs = 3\nbatch-size = 7\npooling = "mean"\n[lstm]\nhidden_size = 12\n[train]\nlr = 0.5\n')
    got = dry_run(capsys, "--data", str(tsv), "--out", str(tmp_path / "m"), "--config", str(toml), "--epochs", "5")
    assert got["train"]["epochs"] == 5  # the flag wins over the file
    assert (got["train"]["batch_size"], got["train"]["lr"], got["pooling"]) == (7, 0.5, "mean")
    assert got["lstm"]["hidden_size"] == 12
    got = dry_run(
        capsys,
        "--data",
        str(tsv),
        "--out",
        str(tmp_path / "m"),
        "--no-bidirectional",
        "--max-len",
        "9",
        "--forget-bias",
        "1",
        "--max-time",
        "none",
    )
    assert (got["lstm"]["bidirectional"], got["max_len"], got["lstm"]["forget_bias"]) == (False, 9, 1.0)
    assert got["train"]["max_time"] is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nosuch = 1\n", "unknown setting 'nosuch'"),
        ("epoch = 3\n", "did you mean epochs"),
        ("epochs = 'many'\n", "epochs (--epochs) must be an integer"),
        ("optimizer = 'adam'\n", "must be one of adamw, sgd"),
        ("dropout = 1.0\n", "dropout (--dropout) must be < 1, got 1"),
        ("epochs = \n", "invalid TOML"),
    ],
)
def test_bad_config_files_are_one_line_naming_file_and_key(tmp_path, tsv, capsys, text, match):
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    assert main(["classify", "train", "--data", str(tsv), "--out", str(tmp_path / "m"), "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {toml}") and match in err and err.count("\n") == 1


def test_errors_are_one_line_exit_2_and_debug_shows_the_traceback(tmp_path, tsv, capsys):
    out = str(tmp_path / "m")
    for argv, match in [
        (["--data", str(tsv), "--out", out, "--epochs", "x"], "epochs (--epochs) must be an integer, got 'x'"),
        (["--data", str(tsv), "--out", out, "--pooling", "sum"], "must be one of last, max, mean, attention"),
        (["--data", str(tmp_path / "none.tsv"), "--out", out], "none.tsv: file not found"),
        (["--out", out], "--data is required"),
        (["--data", str(tsv), "--out", out, "--config", "/no/such.toml"], "config file not found"),
        (["--data", str(tsv), "--out", out, "--word-dim", "3"], "unrecognized arguments: --word-dim"),
    ]:
        assert main(["classify", "train", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1 and "Traceback" not in err, err
    from lstmkit.errors import DataError

    with pytest.raises(DataError):
        main(["classify", "train", "--data", str(tmp_path / "none.tsv"), "--out", out, "--debug"])


def test_old_spellings_get_a_hint(tmp_path, capsys):
    assert main(["classify", "predict", "--model", str(tmp_path), "--output-format", "jsonl"]) == 2
    assert "--output-format is now --json" in capsys.readouterr().err
    assert main(["classify", "predict", "--model", str(tmp_path), "--input", "x.txt"]) == 2
    assert "--input is now --data" in capsys.readouterr().err


def test_out_is_checked_before_any_work(tmp_path, tsv, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["classify", "train", "--data", str(tsv), "--out", str(tmp_path / "file"), "--dry-run"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert main(["classify", "train", "--data", str(tsv), "--out", str(model), "--dry-run"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["classify", "train", "--data", str(tsv), "--out", str(model), "--dry-run", "--overwrite"]) == 0


def test_train_evaluate_predict_inspect_end_to_end(tmp_path, tsv, capsys):
    out = tmp_path / "m"
    argv = [
        "classify",
        "train",
        "--data",
        str(tsv),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--hidden-size",
        "4",
        "--embed-size",
        "4",
        "--quiet",
        "--threads",
        "1",
        "--json",
    ]
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(argv) == 0
        assert torch.get_num_threads() == 1  # --threads reaches torch (and the kernels on its pool)
    finally:
        torch.set_num_threads(threads)
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["training"]["epochs_run"] == 1 and "valid" in metrics
    assert main(["classify", "evaluate", "--model", str(out), "--data", str(tsv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 24
    pred = tmp_path / "pred.csv"
    (tmp_path / "in.txt").write_text("good\nbad\n")
    assert (
        main(["classify", "predict", "--model", str(out), "--data", str(tmp_path / "in.txt"), "--output", str(pred)])
        == 0
    )
    assert pred.read_text().count("\n") == 3 and "wrote" in capsys.readouterr().err
    assert main(["inspect", "--model", str(out), "--layer", "0", "--direction", "1"]) == 0
    png = out / "gates.png"
    assert capsys.readouterr().out.strip() == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["inspect", "--model", str(out), "--layer", "5"]) == 2
    assert "has 1 layer(s)" in capsys.readouterr().err
    assert main(["inspect", "--model", str(tmp_path / "nothing")]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["tag", "evaluate", "--model", str(out), "--data", str(tsv)]) == 2
    assert "a 'classify' model, not a 'tag' model" in capsys.readouterr().err


def test_json_output_is_strict():
    text = dumps_json({"loss": float("nan"), "x": [float("inf"), 1.5], "t": (1, 2)})
    assert json.loads(text) == {"loss": None, "x": [None, 1.5], "t": [1, 2]}
    assert "NaN" not in text and "Infinity" not in text
