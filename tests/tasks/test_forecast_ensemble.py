"""The default forecaster's pieces: the ensemble of LSTM forecasters, the last-value-relative ridge map
(NLinear) it is combined with, and the combination weight fitted on the valid windows."""

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit
from lstmkit.tasks.forecast.baselines import RidgeLinear
from lstmkit.tasks.forecast.config import ForecastConfig
from lstmkit.tasks.forecast.data import Batch
from lstmkit.tasks.forecast.model import ForecastNet
from lstmkit.tasks.forecast.task import Forecast

DIMS = {"n_past": 2, "n_target": 2, "n_future": 0}


def _net(**kw):
    cfg = ForecastConfig().build(lookback=12, horizon=4, hidden_size=8, patch=3, features="M", **kw)
    torch.manual_seed(0)
    net = ForecastNet(cfg, DIMS)
    net.start_linear(0.1 * torch.randn(2, 4, 12), 0.1 * torch.randn(2, 4))
    return net.eval()


def test_linear_map_is_relative_to_the_last_value():
    """lin(x + c) = lin(x) + c for a level shift c of a channel: NLinear's normalisation."""
    net = _net()
    past = torch.randn(5, 12, 2)
    shifted = past + torch.tensor([3.0, -7.0])
    assert torch.allclose(
        net.linear_forecast(shifted), net.linear_forecast(past) + torch.tensor([3.0, -7.0]), atol=1e-5
    )


def test_weight_one_is_the_linear_map_and_zero_the_mean_of_the_members():
    past, fut = torch.randn(5, 12, 2), torch.zeros(5, 16, 0)
    one, zero = _net(linear_weight=1.0, ensemble=2), _net(linear_weight=0.0, ensemble=2)
    assert torch.allclose(one(past, fut)[..., 0], one.linear_forecast(past), atol=1e-6)
    members = zero(past, fut, members=True)  # (K, B, H, C, Q)
    assert members.shape == (2, 5, 4, 2, 1)
    assert not torch.allclose(members[0], members[1])  # different initial weights
    assert torch.allclose(zero(past, fut), members.mean(0), atol=1e-6)


def test_fit_mix_is_the_least_squares_weight_clipped_to_0_1():
    net = _net(ensemble=2)
    past, fut = torch.randn(64, 12, 2), torch.zeros(64, 16, 0)
    with torch.no_grad():
        m = net(past, fut, members=True)[..., 0].mean(0)  # (B, H, C)
        lin = net.linear_forecast(past)
    assert net.fit_mix([(past, fut, 0.3 * m + 0.7 * lin)]) == pytest.approx(0.7, abs=1e-5)
    y = 0.3 * m + 0.7 * lin + 0.05 * torch.randn_like(m)
    w = net.fit_mix([(past[:32], fut[:32], y[:32]), (past[32:], fut[32:], y[32:])])  # summed over batches
    grid = np.linspace(0, 1, 1001)
    mse = [float(((1 - g) * m + g * lin - y).square().mean()) for g in grid]
    assert w == pytest.approx(grid[int(np.argmin(mse))], abs=2e-3)
    assert net.fit_mix([(past, fut, 2 * lin - m)]) == 1.0  # the unclipped weight is 2
    assert net.fit_mix([(past, fut, 2 * m - lin)]) == 0.0  # ... and -1


@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_training_loss_is_the_mean_of_the_members_and_validation_judges_the_combination(kind):
    """--loss mae (the default) or mse: each member's own loss in training, the combined forecast's in evaluation."""
    kw = {} if kind == "mae" else {"loss": kind}
    task = Forecast(ForecastConfig().build(lookback=12, horizon=4, hidden_size=8, patch=3, ensemble=3, **kw))
    fn = {"mae": torch.nn.functional.l1_loss, "mse": torch.nn.functional.mse_loss}[kind]
    net = _net(ensemble=3)
    b = Batch(torch.randn(8, 12, 2), torch.zeros(8, 16, 0), torch.randn(8, 4, 2))
    net.train()
    torch.manual_seed(1)
    loss = task.loss(net, b)
    torch.manual_seed(1)
    each = [fn(m(b.past, b.future, b.y)[..., 0], b.y) for m in net.members]
    assert loss.item() == pytest.approx(torch.stack(each).mean().item(), rel=1e-5)
    net.eval()
    combined = net(b.past, b.future)[..., 0]
    assert float(task.loss(net, b).detach()) == pytest.approx(float(fn(combined, b.y).detach()))
    other = {"mae": torch.nn.functional.mse_loss, "mse": torch.nn.functional.l1_loss}[kind]
    assert float(task.loss(net, b).detach()) != pytest.approx(float(other(combined, b.y).detach()), rel=1e-3)


def test_relative_ridge_is_least_squares_on_last_value_relative_windows():
    rng = np.random.default_rng(0)
    z = np.cumsum(rng.normal(size=(600, 1)), axis=0)  # a random walk: levels drift, differences do not
    origins = np.arange(8, 596)
    fit = RidgeLinear.fit([(z, origins)], 8, 4, alpha=1e-9, relative=True)
    X = np.stack([z[o - 8 : o, 0] - z[o - 1, 0] for o in origins])  # (W, L)
    Y = np.stack([z[o : o + 4, 0] - z[o - 1, 0] for o in origins])  # (W, H)
    X1 = np.concatenate([X[:, :-1], np.ones((len(X), 1))], axis=1)  # the last column is 0: left out
    coef = np.linalg.lstsq(X1, Y, rcond=None)[0]
    assert np.allclose(X1 @ coef, np.concatenate([X, np.ones((len(X), 1))], axis=1) @ fit.weight, atol=1e-4)


def test_default_fits_the_weight_on_valid_and_saves_it(tmp_path):
    t = np.arange(500)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=500)})
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    kw = dict(lookback=24, horizon=6, hidden_size=8, epochs=2, ensemble=2, device="cpu", quiet=True)
    res = lstmkit.train("forecast", csv, out=tmp_path / "m", **kw)
    w = res.metrics["linear_weight"]
    assert 0.0 <= w <= 1.0
    p = lstmkit.load(tmp_path / "m")
    assert float(p.model.mix) == pytest.approx(w, abs=1e-4) and p.config.linear_weight is None
    # w = 1: the linear map alone, the same forecast whatever the LSTMs' seed
    a = lstmkit.train("forecast", csv, linear_weight=1.0, seed=1, **kw).metrics["test"]["mse"]
    b = lstmkit.train("forecast", csv, linear_weight=1.0, seed=2, **kw).metrics["test"]["mse"]
    assert a == pytest.approx(b, rel=1e-5)


def test_one_linear_map_per_target_channel(tmp_path):
    """M: a periodic channel and a random walk get their own maps (the walk's is near "repeat the last value")."""
    rng = np.random.default_rng(0)
    t = np.arange(400)
    df = pd.DataFrame({"cyc": np.sin(2 * np.pi * t / 12), "walk": np.cumsum(rng.normal(size=400))})
    df.to_csv(tmp_path / "d.csv", index=False)
    lstmkit.train(
        "forecast",
        tmp_path / "d.csv",
        out=tmp_path / "m",
        features="M",
        lookback=24,
        horizon=4,
        hidden_size=8,
        epochs=1,
        device="cpu",
        quiet=True,
    )
    p = lstmkit.load(tmp_path / "m")
    net, cyc = p.model, p.target_columns.index("cyc")
    assert net.lin_weight.shape == (2, 4, 24) and net.lin_bias.shape == (2, 4)
    past = torch.zeros(1, 24, 2)
    past[0, :, cyc] = torch.sin(2 * torch.pi * torch.arange(24) / 12)
    lin = net.linear_forecast(past)[0]  # (H, C)
    assert torch.allclose(lin[:, cyc], torch.sin(2 * torch.pi * torch.arange(24, 28) / 12), atol=0.05)  # the cycle
    assert lin[:, 1 - cyc].abs().max() < 0.1  # a walk at 0 stays near 0


def test_refit_linear_lets_the_valid_windows_inform_the_maps(tmp_path):
    """A regime change after the train split (period 12, then 8): the maps fitted again on train + valid
    (the default) forecast the new regime; fitted on train only, they do not."""
    t = np.arange(400)
    y = np.where(t < 200, np.sin(2 * np.pi * t / 12), np.sin(2 * np.pi * t / 8))
    pd.DataFrame({"y": y}).to_csv(tmp_path / "d.csv", index=False)
    kw = dict(lookback=24, horizon=4, split=[0.5, 0.25, 0.25], hidden_size=8, epochs=1, linear_weight=1.0)
    kw.update(device="cpu", quiet=True)
    refit = lstmkit.train("forecast", tmp_path / "d.csv", **kw).metrics["test"]["mse"]
    train_only = lstmkit.train("forecast", tmp_path / "d.csv", refit_linear=False, **kw).metrics["test"]
    assert train_only["mse"] == pytest.approx(train_only["baselines"]["linear"]["mse"], rel=0.2)  # the same fit
    assert refit < 0.1 * train_only["mse"]


def test_crossing_quantiles_are_sorted_outside_training_only():
    net = _net(quantiles=[0.1, 0.5, 0.9], ensemble=2)
    with torch.no_grad():
        for m in net.members:  # a head whose 0.1 output sits far above its 0.9 output
            m.head.bias.view(-1, 3)[:, 0] += 5.0
    past, future = torch.randn(6, 12, 2), torch.zeros(6, 16, 0)
    out = net(past, future)  # (B, H, C, Q)
    assert (out.diff(dim=-1) >= 0).all()
    raw = torch.stack([m(past, future) for m in net.members]).mean(0)  # (B, H, C, Q), crossing
    assert (raw.diff(dim=-1) < 0).any()
    point = raw.sort(dim=-1).values[..., 1]
    assert torch.allclose(out[..., 1], point + net.mix * (net.linear_forecast(past) - point), atol=1e-5)
    net.train()
    assert (net(past, future)[..., 0] > net(past, future)[..., 2]).any()  # each head its own output
