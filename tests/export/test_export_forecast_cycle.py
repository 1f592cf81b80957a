"""A forecaster with a learnt cycle (``--cycle``) exported: the phase channel through the ONNX graph, the
runtime's predict and stream, and the torch-free import."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from export_helpers import FIXTURES, assert_same, predict_without_torch, streamed

import lstmkit
from lstmkit import tasks
from lstmkit.export import export_model
from lstmkit.runtime import load

TABLE = FIXTURES / "forecast_input.csv"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The fixture forecaster rebuilt with a cycle of 6 hours (random weights, a random cycle and bias per phase),
    saved and exported."""
    fixture = lstmkit.load(FIXTURES / "forecast")
    cls = tasks.task_class("forecast")
    config = cls.spec.config.from_dict({**fixture.config.to_dict(), "season": 6})
    dims = {**fixture.dims, "cycle": 6}
    torch.manual_seed(0)
    model = cls(config).build(dims).eval()
    with torch.no_grad():
        model.members[0].cycle.copy_(torch.randn(6, 1))
        model.lin_phase.copy_(torch.randn(1, 6, 3))  # (C, W, H): the linear map's bias per phase
    folder = tmp_path_factory.mktemp("cyc") / "model"
    cls.Predictor(config, model, dims, fixture.transforms).save(folder)
    return lstmkit.load(folder), load(export_model(folder, folder.parent / "export")), folder.parent / "export"


def test_the_phase_channel_runs_through_the_graph(pair):
    torch_p, ort_p, _ = pair
    df = pd.read_csv(TABLE)
    assert torch_p.dims["cycle"] == 6
    assert_same(ort_p.predict(df), torch_p.predict(df))
    shifted = df.assign(date=pd.to_datetime(df["date"]) + pd.Timedelta(hours=1))  # other phases, other forecast
    assert not torch_p.predict(shifted)["load"].equals(torch_p.predict(df)["load"])
    assert_same(ort_p.predict(shifted), torch_p.predict(shifted))


def test_stream_and_torch_free_runtime(pair):
    torch_p, ort_p, export = pair
    df = pd.read_csv(TABLE)
    one = df[df["site"] == "x"].to_dict(orient="records")
    assert_same(streamed(ort_p, one), torch_p.predict(pd.DataFrame(one)))
    assert_same(predict_without_torch(export, TABLE), torch_p.predict(df))
