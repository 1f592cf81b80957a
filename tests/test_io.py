"""The model folder: save/read round trip, atomic writes, and clear errors for broken folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import lstmkit
from lstmkit.errors import ModelFolderError
from lstmkit.io import FORMAT_VERSION, atomic_write_json, atomic_write_text, read_folder, save_model


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
        config={"hidden_size": 4, "path": Path("x.csv")},
        dims={"vocab_size": 5},
        model=model,
        transforms={"vocab": {"tokens": ["a", "b"]}},
        metrics={"acc": 0.5},
    )
    return model


def test_round_trip(tmp_path):
    model = _save(tmp_path / "m")
    mf = read_folder(tmp_path / "m")
    assert mf.task == "faketask" and mf.header["lstmkit_version"] == lstmkit.__version__
    assert mf.header["format_version"] == FORMAT_VERSION == 2
    assert mf.config == {"hidden_size": 4, "path": "x.csv"} and mf.dims == {"vocab_size": 5}
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
        ("bad_weights", "does not match the checksum in config.json"),
        ("bad_weights_same_checksum", "corrupt safetensors"),
        ("nan_weights", "tensor 'emb.weight' holds NaN or infinite values"),
        ("old_format", "model folder format 1 (lstmkit 0.1.0); this lstmkit"),
        ("no_dims", "field 'dims' missing"),
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
    elif breakage == "bad_weights_same_checksum":  # rewritten together with its checksum: the format check
        _rewrite_weights(folder, b"\x00garbage" * 10)
    elif breakage == "nan_weights":
        from safetensors.torch import save

        state = read_folder(folder).state_dict
        state["emb.weight"][0, 0] = float("nan")
        _rewrite_weights(folder, save({k: v.contiguous() for k, v in state.items()}))
    elif breakage == "old_format":  # a folder of lstmkit 0.1: no format_version, settings at the top
        old = {"task": "faketask", "lstmkit_version": "0.1.0", "transforms": ["vocab"], "hidden_size": 4}
        (folder / "config.json").write_text(json.dumps(old))
    elif breakage == "no_dims":
        (folder / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "dims"}))
    elif breakage == "no_transform":
        (folder / "vocab.json").unlink()
    with pytest.raises(ModelFolderError, match=re.escape(match)) as info:
        read_folder(folder)
    assert str(folder) in str(info.value)


def _rewrite_weights(folder: Path, raw: bytes) -> None:
    import hashlib

    (folder / "model.safetensors").write_bytes(raw)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["weights"] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    (folder / "config.json").write_text(json.dumps(cfg))


def test_files_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        from lstmkit import io

        io._UMASK.clear()
        atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        io._UMASK.clear()
        atomic_write_text(tmp_path / "b.txt", "x")
        assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
        io._UMASK.clear()


def test_commit_folder_swaps_whole_folders(tmp_path):
    from lstmkit.io import commit_folder, staging_dir

    out = tmp_path / "m"
    for version in ("one", "two"):
        stage = staging_dir(out)
        stage.mkdir()
        (stage / "v.txt").write_text(version)
        commit_folder(stage, out)
        assert (out / "v.txt").read_text() == version and not stage.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # nothing left beside it


def test_load_unknown_task_and_missing_weights(tmp_path):
    folder = tmp_path / "m"
    _save(folder)
    with pytest.raises(ModelFolderError, match="unknown task 'faketask'"):
        lstmkit.load(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="model.safetensors"):
        read_folder(folder)


def _frames():
    import numpy as np
    import pandas as pd

    times = pd.date_range("2024-01-06 10:00", periods=3, freq="h")
    yield pd.DataFrame({"site": ["x", "y", None], "date": times, "v": np.array([1.5, np.nan, np.inf], np.float32)})
    yield pd.DataFrame({"i": [1, 2, 3], "b": [True, False, True], "o": [None, "s", 3], "d": [pd.NaT, *times[:2]]})
    yield pd.DataFrame({"utc": times.tz_localize("UTC"), "f64": [1e300, -0.0, np.nan], 7: [1, 2, 3]})
    yield pd.DataFrame(
        {
            "F": pd.array([1.5, None, 2], dtype="Float32"),
            "I": pd.array([1, None, 3], dtype="Int64"),
            "c": pd.Categorical(["u", None, "u"]),
            "na": pd.Series(["a", pd.NA, "b"], dtype=object),
        }
    )
    yield pd.DataFrame(index=range(2))  # rows, no columns
    yield pd.DataFrame({"a": []})
    yield pd.DataFrame([[1, 2]], columns=["a", "a"])


@pytest.mark.filterwarnings("ignore:DataFrame columns are not unique")
@pytest.mark.parametrize("k", range(7))
def test_to_jsonable_frame_fast_path_matches_to_dict_records(k):
    """A DataFrame is converted a column at a time; the result is to_dict(orient="records") made JSON."""
    from lstmkit.io import to_jsonable

    df = list(_frames())[k]
    want = [to_jsonable(row) for row in df.to_dict(orient="records")]
    want = json.loads(json.dumps(want, default=lambda v: None))  # pd.NA -> null, as the fast path does
    got = to_jsonable(df)
    assert json.dumps(got, allow_nan=True) == json.dumps(want, allow_nan=True)
    assert [type(v) for row in got for v in row.values()] == [type(v) for row in want for v in row.values()]
