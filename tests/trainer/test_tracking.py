"""--log-to: tiny classify runs through the command line, read back from TensorBoard's event files and
from a fake ``mlflow`` module that records its calls; csv stays as it was; a missing package is one line."""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import pytest

from lstmkit.cli.main import main

TRAIN = "good film\t1\nbad film\t0\nfine work\t1\nawful plot\t0\ngreat acting\t1\ndull story\t0\n" * 3
VALID = "good plot\t1\nbad acting\t0\nfine film\t1\nawful work\t0\n"
TINY = ["--epochs", "2", "--hidden-size", "8", "--embed-size", "8", "--batch-size", "4", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("text")
    (folder / "train.tsv").write_text("sentence\tlabel\n" + TRAIN)
    (folder / "valid.tsv").write_text("sentence\tlabel\n" + VALID)
    return ["--data", str(folder / "train.tsv"), "--valid", str(folder / "valid.tsv")]


def train(data: list[str], out: Path, *extra: str) -> int:
    return main(["classify", "train", *data, "--out", str(out), "--quiet", *TINY, *extra])


def history(out: Path) -> list[dict[str, float]]:
    with open(out / "history.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def scalars(log_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}, ea


def test_tensorboard_event_files_hold_every_history_column_the_config_and_the_plot(data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    out = tmp_path / "m"
    assert train(data, out, "--log-to", "tensorboard") == 0
    logged, ea = scalars(out / "tensorboard")
    rows = history(out)
    assert set(logged) == {"train_loss", "valid_loss", "accuracy", "macro_f1", "lr"}
    for tag, points in logged.items():
        assert points == [(int(r["epoch"]), pytest.approx(r[tag], rel=1e-6)) for r in rows]
    assert ea.Tags()["images"] == ["plots/loss"]
    start = ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = HParamsPluginData.FromString(start).session_start_info.hparams
    assert hp["task"].string_value == "classify" and hp["train.log_to"].string_value == "tensorboard"
    assert hp["train.epochs"].number_value == 2 and hp["lstm.hidden_size"].number_value == 8


def test_tensorboard_resume_goes_on_without_repeating_epochs(data, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "m"
    assert train(data, out, "--log-to", "tensorboard") == 0
    assert train(data, out, "--log-to", "tensorboard", "--resume", "--epochs", "3") == 0
    logged, _ = scalars(out / "tensorboard")
    assert [step for step, _ in logged["train_loss"]] == [1, 2, 3]
    assert [v for _, v in logged["train_loss"]] == pytest.approx([r["train_loss"] for r in history(out)])


class FakeMlflow(types.ModuleType):
    """Records every call of the fluent API the tracker uses."""

    def __init__(self, active: object = None):
        super().__init__("mlflow")
        self.calls: list[tuple[str, tuple, dict]] = []
        self.active = active
        for name in ("start_run", "log_params", "log_dict", "log_metrics", "end_run"):
            setattr(self, name, self._recorder(name))

    def _recorder(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def active_run(self) -> object:
        return self.active

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        assert Path(path).is_file()  # still there when logged
        self.calls.append(("log_artifact", (Path(path).name,), {"artifact_path": artifact_path}))

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


def test_mlflow_run_gets_params_metrics_per_epoch_and_the_plots(data, tmp_path, monkeypatch):
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    out = tmp_path / "m"
    assert train(data, out, "--log-to", "mlflow") == 0
    assert [n for n, _, _ in fake.calls][:3] == ["start_run", "log_params", "log_dict"]
    assert fake.named("start_run") == [((), {"run_name": "m", "nested": False})]
    params = fake.named("log_params")[0][0][0]
    assert params["task"] == "classify" and params["train.log_to"] == "mlflow" and params["train.lr"] == 2e-3
    saved = json.loads((out / "config.json").read_text())["config"]
    assert fake.named("log_dict")[0][0] == ({"task": "classify", **saved}, "config.json")
    metrics = fake.named("log_metrics")
    assert [k["step"] for _, k in metrics] == [1, 2]
    for (logged,), row in zip((a for a, _ in metrics), history(out)):
        assert logged == pytest.approx({k: v for k, v in row.items() if k != "epoch"})
    assert fake.named("log_artifact") == [(("loss.png",), {"artifact_path": "plots"})]
    assert fake.calls[-1] == ("end_run", (), {"status": "FINISHED"})


def test_mlflow_nests_in_an_active_run_and_a_failed_run_ends_failed(data, tmp_path, monkeypatch, capsys):
    from lstmkit.errors import LstmkitError
    from lstmkit.trainer.loop import Trainer

    def fail(self):
        raise LstmkitError("boom")

    fake = FakeMlflow(active=object())
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setattr(Trainer, "_end_epoch", fail)
    assert train(data, tmp_path / "m", "--log-to", "mlflow") == 2
    assert capsys.readouterr().err == "error: boom\n"
    assert fake.named("start_run")[0][1]["nested"] is True
    assert fake.calls[-1] == ("end_run", (), {"status": "FAILED"})


def test_csv_is_the_default_and_adds_nothing(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # neither package is needed
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    out = tmp_path / "m"
    assert train(data, out) == 0
    assert json.loads((out / "config.json").read_text())["config"]["train"]["log_to"] == "csv"
    assert not (out / "tensorboard").exists()
    assert list(history(out)[0]) == ["epoch", "train_loss", "valid_loss", "accuracy", "macro_f1", "lr"]


@pytest.mark.parametrize(("log_to", "extra"), [("tensorboard", "track"), ("mlflow", "mlflow")])
def test_a_missing_package_is_one_line_naming_the_extra(data, tmp_path, monkeypatch, capsys, log_to, extra):
    monkeypatch.setitem(sys.modules, log_to, None)  # import fails as if it were not installed
    assert train(data, tmp_path / "m", "--log-to", log_to) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --log-to {log_to} needs the {log_to} package: pip install 'lstmkit[{extra}]'"
    assert not (tmp_path / "m").exists() and not (tmp_path / ".m.partial").exists()
