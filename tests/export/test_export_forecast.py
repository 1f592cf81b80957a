"""Forecaster export: ONNX Runtime against torch (network, predict, evaluate, stream), and without torch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from export_helpers import FIXTURES, assert_same, predict_without_torch, streamed

import lstmkit
from lstmkit.cli.main import main
from lstmkit.runtime import load

TABLE = FIXTURES / "forecast_input.csv"


@pytest.fixture(scope="module")
def pair(exported):
    return lstmkit.load(FIXTURES / "forecast"), load(exported("forecast"))


@pytest.mark.parametrize("batch", [1, 5, 64])
def test_network_matches_torch(pair, batch):
    torch_p, ort_p = pair
    cfg, dims = torch_p.config, torch_p.dims
    rng = np.random.default_rng(batch)
    past = rng.standard_normal((batch, cfg.lookback, dims["n_past"]), dtype=np.float32)
    future = rng.standard_normal((batch, cfg.lookback + cfg.horizon, dims["n_future"]), dtype=np.float32)
    want = torch_p.network(past, future)  # (B, H, C, Q)
    got = ort_p.network(past, future)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4


def test_predict_and_evaluate_match_torch(pair):
    torch_p, ort_p = pair
    df = pd.read_csv(TABLE)
    assert_same(ort_p.predict(df), torch_p.predict(df))
    one = df[df["site"] == "x"]  # one series
    assert_same(ort_p.predict(one), torch_p.predict(one))
    import sys

    sys.path.insert(0, str(FIXTURES))
    from make_forecast import table  # the fixture's training table

    long = table(120)
    assert_same(ort_p.evaluate(long), torch_p.evaluate(long))


def test_a_stream_of_rows_equals_the_whole_table(pair):
    _, ort_p = pair
    df = pd.read_csv(TABLE)
    one = df[df["site"] == "x"].to_dict(orient="records")
    assert_same(streamed(ort_p, one), ort_p.predict(pd.DataFrame(one)))


def test_export_folder_predicts_without_torch(exported):
    got = predict_without_torch(exported("forecast"), TABLE)
    assert_same(got, lstmkit.load(FIXTURES / "forecast").predict(pd.read_csv(TABLE)))


def test_cli_predict_on_an_export_folder(exported, capsys):
    assert main(["forecast", "predict", "--model", str(FIXTURES / "forecast"), "--data", str(TABLE), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["forecast", "predict", "--model", str(exported("forecast")), "--data", str(TABLE), "--json"]) == 0
    assert_same(json.loads(capsys.readouterr().out), want)


@pytest.mark.parametrize(
    "changes",
    [{"cell": "slstm", "heads": 2}, {"layer_norm": True, "peephole": True, "num_layers": 2, "ensemble": 2}],
    ids=["slstm", "layer-norm-peephole-ensemble"],
)
def test_variants_export_too(tmp_path, changes):
    from export_helpers import rebuilt

    from lstmkit.export import export_model

    torch_p = rebuilt("forecast", **changes)
    ort_p = load(export_model(torch_p, tmp_path / "export"))
    df = pd.read_csv(TABLE)
    assert_same(ort_p.predict(df), torch_p.predict(df))
