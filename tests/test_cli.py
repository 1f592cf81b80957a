"""The command line: version/help, --config TOML precedence, error handling, inspect."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
import torch

from lstmkit.cli import main as cli_main
from lstmkit.cli.common import add_train_options, train_config_from_args
from lstmkit.errors import DataError
from lstmkit.io import save_model


def _register(sub) -> None:
    p = sub.add_parser("spinefake", help="a fake task for the CLI tests")
    ss = p.add_subparsers(dest="action", metavar="<action>")
    t = ss.add_parser("train", help="train")
    add_train_options(t)
    t.add_argument("--window", type=int, default=48, help="window length")
    t.set_defaults(
        func=lambda a: print(
            json.dumps(
                {
                    **train_config_from_args(a).to_dict(),
                    "window": a.window,
                    "hidden_size": a.hidden_size,
                    "data": a.data,
                }
            )
        )
    )
    e = ss.add_parser("evaluate", help="evaluate")
    e.add_argument("--json", action="store_true", help="one JSON object on stdout")

    def fail(args):
        raise DataError("train.csv: column 'OT' not found (columns: a, b)")

    e.set_defaults(func=fail)


@pytest.fixture
def fake_cli(monkeypatch):
    module = types.ModuleType("lstmkit.cli.spinefake")
    module.register = _register
    monkeypatch.setitem(sys.modules, "lstmkit.cli.spinefake", module)
    monkeypatch.setattr(cli_main, "TASK_MODULES", ["spinefake", "definitely_missing_task"])


def test_version_and_help(capsys, fake_cli):
    assert cli_main.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "lstmkit 0.1.0"
    with pytest.raises(SystemExit) as info:
        cli_main.main(["--debug", "--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == "lstmkit 0.1.0"
    with pytest.raises(SystemExit):
        cli_main.main(["spinefake", "train", "--help"])
    out = capsys.readouterr().out
    for text in ("--epochs EPOCHS", "(default: 20)", "--max-time SECONDS", "--debug", "(default: 48)"):
        assert text in out
    assert cli_main.main(["spinefake"]) == 2  # a task without an action: its help, exit 2


def test_config_file_with_cli_flags_winning(tmp_path, capsys, fake_cli):
    toml = tmp_path / "c.toml"
    toml.write_text('epochs = 3\nbatch-size = 7\nlr = 1\nwindow = 12\nbidirectional = true\ndata = "x.csv"\n')
    assert cli_main.main(["spinefake", "train", "--config", str(toml), "--epochs", "5"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["epochs"], got["batch_size"], got["lr"], got["window"], got["data"]) == (5, 7, 1.0, 12, "x.csv")


@pytest.mark.parametrize(
    "text, match",
    [
        ("nosuch = 1\n", "unknown key 'nosuch'"),
        ("epochs = 'many'\n", "expected an integer"),
        ("optimizer = 'adam'\n", "not one of"),
        ("epochs = \n", "invalid TOML"),
    ],
)
def test_bad_config_files(tmp_path, capsys, fake_cli, text, match):
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    assert cli_main.main(["spinefake", "train", "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and err.count("\n") == 1


def test_errors_are_one_line_exit_2_and_debug_shows_traceback(capsys, fake_cli):
    assert cli_main.main(["spinefake", "evaluate"]) == 2
    err = capsys.readouterr().err
    assert err == "error: train.csv: column 'OT' not found (columns: a, b)\n"
    assert cli_main.main(["spinefake", "train", "--lr", "-1"]) == 2
    assert "lr must be > 0" in capsys.readouterr().err
    assert cli_main.main(["spinefake", "train", "--config", "/no/such.toml"]) == 2
    assert "config file not found" in capsys.readouterr().err
    with pytest.raises(DataError):
        cli_main.main(["spinefake", "evaluate", "--debug"])
    with pytest.raises(SystemExit) as info:
        cli_main.main(["spinefake", "train", "--epochs", "x"])
    assert info.value.code == 2


def test_missing_task_module_skipped_but_other_import_errors_propagate(monkeypatch):
    monkeypatch.setattr(cli_main, "TASK_MODULES", ["definitely_missing_task"])
    assert "definitely_missing_task" not in cli_main.build_parser().format_help()

    def importer(name):  # a task CLI whose own import of a dependency fails
        raise ModuleNotFoundError("No module named 'some_dependency'", name="some_dependency")

    monkeypatch.setattr(cli_main.importlib, "import_module", importer)
    monkeypatch.setattr(cli_main, "TASK_MODULES", ["forecast"])
    with pytest.raises(ModuleNotFoundError, match="some_dependency"):
        cli_main.build_parser()


class _Predictor:
    """What a task's predictor offers `lstmkit inspect` (docs/contracts.md)."""

    num_directions = 1

    def __init__(self) -> None:
        from lstmkit.nn import LSTM

        torch.manual_seed(0)
        self.lstm = LSTM(3, 5, num_layers=2, batch_first=True)

    def inspect_sample(self, data, index=0):
        return torch.randn(1, 7, 3)

    def trace_gates(self, sample):
        with torch.no_grad():
            return self.lstm(sample, return_gates=True)[2]

    def step_labels(self, sample):
        return [f"t{i}" for i in range(sample.shape[1])]


def test_inspect_writes_gate_heatmaps(tmp_path, capsys, monkeypatch):
    task = types.ModuleType("lstmkit.tasks.spineinspect")
    task.load_predictor = lambda folder: _Predictor()
    monkeypatch.setitem(sys.modules, "lstmkit.tasks.spineinspect", task)
    save_model(tmp_path / "m", task="spineinspect", config={"bidirectional": False}, model=torch.nn.Linear(1, 1))
    assert cli_main.main(["inspect", "--model", str(tmp_path / "m"), "--layer", "0"]) == 0
    png = tmp_path / "m" / "gates.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert cli_main.main(["inspect", "--model", str(tmp_path / "m"), "--layer", "5"]) == 2
    assert "has 2 layer(s)" in capsys.readouterr().err
    assert cli_main.main(["inspect", "--model", str(tmp_path / "nothing")]) == 2
    assert "model folder not found" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    run = subprocess.run([sys.executable, "-m", "lstmkit", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "lstmkit 0.1.0"


def test_print_json_is_one_object_on_stdout(capsys):
    from pathlib import Path

    from lstmkit.cli.common import print_json

    print_json({"acc": 0.5, "path": Path("a"), "n": (1, 2)})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"acc": 0.5, "path": "a", "n": [1, 2]}
