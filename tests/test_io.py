"""The model folder: save/read round trip, atomic writes, and clear errors for broken folders."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import lstmkit
from lstmkit.errors import ModelFolderError
from lstmkit.io import atomic_write_json, atomic_write_text, read_folder, save_model, task_config


@dataclass
class _Cfg:
    hidden_size: int = 4
    path: Path = Path("x.csv")


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.emb.weight  # tied: shared storage


def _save(folder: Path) -> nn.Module:
    torch.manual_seed(0)
    model = _Tied()
    save_model(
        folder,
        task="faketask",
        config=_Cfg(),
        model=model,
        transforms={"vocab": {"tokens": ["a", "b"]}},
        metrics={"acc": 0.5},
    )
    return model


def test_round_trip(tmp_path):
    model = _save(tmp_path / "m")
    mf = read_folder(tmp_path / "m")
    assert mf.task == "faketask" and mf.config["lstmkit_version"] == lstmkit.__version__
    assert task_config(mf.config) == {"hidden_size": 4, "path": "x.csv"}
    assert mf.transforms == {"vocab": {"tokens": ["a", "b"]}} and mf.metrics == {"acc": 0.5}
    fresh = _Tied()
    fresh.load_state_dict(mf.state_dict)
    assert torch.equal(fresh.emb.weight, model.emb.weight)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
        "vocab.json",
    ]


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    atomic_write_json(tmp_path / "sub" / "b.json", {"p": Path("q"), "t": (1, 2)})
    assert (tmp_path / "a.txt").read_text() == "two"
    assert json.loads((tmp_path / "sub" / "b.json").read_text()) == {"p": "q", "t": [1, 2]}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.json", "sub"]


def test_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{}")
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"x": object()})
    assert (tmp_path / "a.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize(
    "breakage, match",
    [
        ("no_folder", "model folder not found"),
        ("no_config", "config.json not found"),
        ("bad_config", "corrupt JSON"),
        ("no_task", "'task' missing"),
        ("no_weights", "model weights not found"),
        ("bad_weights", "corrupt safetensors"),
        ("old_version", "incompatible"),
        ("no_transform", "transform 'vocab' not found"),
    ],
)
def test_broken_folders_raise_model_folder_error(tmp_path, breakage, match):
    folder = tmp_path / "m"
    _save(folder)
    cfg = json.loads((folder / "config.json").read_text())
    if breakage == "no_folder":
        folder = tmp_path / "missing"
    elif breakage == "no_config":
        (folder / "config.json").unlink()
    elif breakage == "bad_config":
        (folder / "config.json").write_text('{"task": ')
    elif breakage == "no_task":
        (folder / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "task"}))
    elif breakage == "no_weights":
        (folder / "model.safetensors").unlink()
    elif breakage == "bad_weights":
        (folder / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    elif breakage == "old_version":
        (folder / "config.json").write_text(json.dumps({**cfg, "lstmkit_version": "9.0.0"}))
    elif breakage == "no_transform":
        (folder / "vocab.json").unlink()
    with pytest.raises(ModelFolderError, match=match) as info:
        read_folder(folder)
    assert str(folder) in str(info.value)


def test_load_dispatches_on_task(tmp_path, monkeypatch):
    _save(tmp_path / "m")
    fake = types.ModuleType("lstmkit.tasks.faketask")
    fake.load_predictor = lambda folder: ("predictor", read_folder(folder).metrics)
    monkeypatch.setitem(sys.modules, "lstmkit.tasks.faketask", fake)
    assert lstmkit.load(tmp_path / "m") == ("predictor", {"acc": 0.5})


def test_load_unknown_task_and_missing_weights(tmp_path):
    folder = tmp_path / "m"
    _save(folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "task": "no_such_task"}))
    with pytest.raises(ModelFolderError, match="unknown task 'no_such_task'"):
        lstmkit.load(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="model.safetensors"):
        lstmkit.load(folder)


def test_save_model_refuses_reserved_keys(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_model(tmp_path, task="t", config={"task": "x"}, model=nn.Linear(1, 1))
