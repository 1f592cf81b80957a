"""Speech export: ONNX Runtime against torch (WAV inputs, feature arrays), the streaming ``step`` graph and
``SpeechStream`` on both predictors, the export folder without torch, and the CLI on an export folder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from export_helpers import FIXTURES, assert_same, fixture_sample, run_without_torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import DataError, LstmkitError
from lstmkit.runtime import load

sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

SR = 8000
TONES = {"a": 300.0, "b": 1000.0, "c": 2500.0}
SMALL = dict(sample_rate=SR, n_mfcc=6, n_mels=12, deltas=0, hidden_size=8, dropout=0.0, subsample=2, batch_size=6)


@pytest.fixture(scope="module")
def pair(exported):
    return lstmkit.load(FIXTURES / "speech"), load(exported("speech"))


def _clip(text: str, rng: np.random.Generator) -> np.ndarray:
    """0.1 s of each letter's tone and 0.04 s of silence, light noise: (N,) float32 (as make_speech.py)."""
    parts = []
    for ch in text:
        t = np.arange(int(0.1 * SR)) / SR
        parts += [0.5 * np.sin(2 * np.pi * TONES[ch] * t), np.zeros(int(0.04 * SR))]
    x = np.concatenate(parts)
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``trained(mode, **settings)``: a tiny speech model (a few seconds), trained once per module."""
    root = tmp_path_factory.mktemp("speech-data")
    rng = np.random.default_rng(0)
    rows = [["path", "text"]]
    for i, word in enumerate(["a", "b", "c", "ab", "ba", "ca"] * 2):
        sf.write(root / f"{i}.wav", _clip(word, rng), SR)
        rows.append([f"{i}.wav", word])
    with open(root / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    made = {}

    def make(name: str, **settings):
        if name not in made:
            out = root / name
            kw = {**SMALL, "epochs": 3, **settings}
            lstmkit.train("speech", root / "train.csv", out=out, quiet=True, device="cpu", valid_fraction=0.0, **kw)
            made[name] = out
        return made[name]

    return make


@pytest.fixture(scope="module")
def streaming(trained, exported):
    """A unidirectional 2-layer CTC model: (torch predictor, runtime predictor) with a ``step`` graph."""
    folder = trained("uni", mode="ctc", bidirectional=False, num_layers=2)
    return lstmkit.load(folder), load(exported("speech", folder))


def _feats(predictor, lengths: list[int], seed: int) -> list[np.ndarray]:
    """Raw (T, F) features drawn around the model's normalisation statistics."""
    rng = np.random.default_rng(seed)
    mean, std = np.array(predictor.norm.mean), np.array(predictor.norm.std)
    return [(mean + std * rng.normal(size=(n, len(mean)))).astype(np.float32) for n in lengths]


# ------------------------------------------------------------------------------------ whole utterances
@pytest.mark.parametrize("options", [{}, {"decoder": "beam", "beam_width": 4}])
def test_runtime_matches_torch_on_the_wav_inputs(pair, options):
    torch_p, ort_p = pair
    manifest = FIXTURES / "speech_input.csv"
    assert_same(ort_p.predict(manifest, **options), torch_p.predict(manifest, **options))
    waves = [sf.read(FIXTURES / f"speech_input_{i}.wav", dtype="float32")[0] for i in range(3)]
    assert_same(ort_p.predict(waves, **options), torch_p.predict(waves, **options))


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("length", [1, 7, 300])
def test_runtime_matches_torch_on_feature_arrays(pair, batch, length):
    torch_p, ort_p = pair
    lengths = [length] * (batch - 1) + [max(1, length // 2)]  # a shorter one in the batch: padding
    feats = _feats(torch_p, lengths, seed=batch * 1000 + length)
    for options in ({}, {"decoder": "beam", "beam_width": 4}):
        assert_same(ort_p.predict_features(feats, **options), torch_p.predict_features(feats, **options))
    x = np.zeros((batch, length, feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch_p.norm(f)
    got, want = ort_p.outputs(x, np.array(lengths)), torch_p.outputs(x, np.array(lengths))
    assert_same(got[1], want[1])
    for b, n in enumerate(want[1]):  # log-probs (B, T', V) over each utterance's steps
        assert_same(got[0][b, :n], want[0][b, :n])


def test_classifier_runtime_matches_torch(trained, exported):
    folder = trained("cls", mode="classify", pooling="last", bidirectional=True, epochs=1)
    torch_p, ort_p = lstmkit.load(folder), load(exported("speech", folder))
    assert "step" not in ort_p.graphs
    feats = _feats(torch_p, [300, 7, 1, 7, 2], seed=3)
    assert_same(ort_p.predict_features(feats), torch_p.predict_features(feats))
    x, lengths = np.stack([torch_p.norm(f[:1]) for f in feats]), np.ones(5, np.int64)  # (5, 1, F)
    assert_same(ort_p.outputs(x, lengths)[0], torch_p.outputs(x, lengths)[0])
    assert_same(ort_p.predict(FIXTURES / "speech_input.csv"), torch_p.predict(FIXTURES / "speech_input.csv"))
    with pytest.raises(LstmkitError, match="classifier"):
        ort_p.stream()


# ------------------------------------------------------------------------------------ streaming
def test_step_graph_matches_the_whole_graph(streaming):
    _, ort_p = streaming
    k, F = ort_p.config.subsample, ort_p.config.audio.dim
    x = ort_p.norm(_feats(ort_p, [50], seed=7)[0])  # (50, F)
    whole = ort_p.graphs["model"](x=x[None], lengths=np.array([50]))[0][0]  # (25, V)
    stacked = x.reshape(1, 50 // k, k * F)  # (1, 25, k·F)
    h = c = np.zeros((2, 1, ort_p.config.lstm.hidden_size), np.float32)
    rows = []
    for lo, hi in [(0, 1), (1, 2), (2, 9), (9, 25)]:  # one stacked frame, then chunks
        lp, h, c = ort_p.graphs["step"](x=stacked[:, lo:hi], h=h, c=c)
        rows.append(lp[0])
    np.testing.assert_allclose(np.concatenate(rows), whole, atol=1e-4)


@pytest.mark.parametrize("side", [0, 1])
def test_stream_chunks_give_the_whole_utterance(streaming, side):
    p = streaming[side]
    x = _feats(p, [51], seed=11)[0]  # (51, F): an odd count, the last frame waits for the end
    s = p.stream()
    chunks = [x[:3].tolist(), x[3].tolist(), [], x[4:20].tolist(), {"frames": x[20:].tolist(), "end": True}]
    outs = [s.step(c) for c in chunks]
    assert [len(o["posteriors"]) for o in outs] == [1, 1, 0, 8, 16]  # 3 frames: 1 stacked + 1 waiting
    posteriors = np.array([row for o in outs for row in o["posteriors"]])  # (26, V)
    whole, lengths = p.outputs(p.norm(x)[None], np.array([51]))
    assert lengths.tolist() == [26]
    np.testing.assert_allclose(posteriors, whole[0], atol=1e-4)
    assert outs[-1]["text"] == p.predict_features(x, decoder="greedy")[0]
    json.dumps(outs)  # JSON-able, as lstmkit serve sends it


def test_torch_and_runtime_streams_agree_and_refuse_bad_input(streaming, pair):
    torch_p, ort_p = streaming
    x = _feats(torch_p, [20], seed=5)[0].tolist()
    assert_same(ort_p.stream().step(x), torch_p.stream().step(x))
    normed = ort_p.stream(normalized=True).step(ort_p.norm(np.array(x, np.float32)).tolist())
    assert_same(normed, torch_p.stream().step(x))
    s = ort_p.stream()
    for bad, message in [([[1.0, 2.0]], "6-number lists"), ([[float("nan")] * 6], "finite"), ("abc", "frames")]:
        with pytest.raises(DataError, match=message):
            s.step(bad)
    with pytest.raises(DataError, match="normalized"):
        ort_p.stream(normalise=True)
    for p in pair:  # the fixture model is bidirectional
        with pytest.raises(LstmkitError, match="bidirectional") as info:
            p.stream()
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ no torch, CLI
def test_export_folder_predicts_and_streams_without_torch(exported, streaming):
    sample = fixture_sample("speech")
    uni = streaming[1].path
    frames = _feats(streaming[0], [30], seed=2)[0].tolist()
    script = f"""
import json, sys
from pathlib import Path
from lstmkit.io import to_jsonable
from lstmkit.runtime import load
p = load({str(exported("speech"))!r})
out = p.predict(Path({str(FIXTURES / sample["input_file"])!r}), **{sample["options"]!r})
s = load({str(uni)!r}).stream()
step = s.step({frames!r})
assert "torch" not in sys.modules
print(json.dumps(to_jsonable([out, step])))
"""
    got, step = run_without_torch(script)
    assert_same(got, sample["outputs"])
    assert_same(step, streaming[0].stream().step(frames))


def test_cli_predict_on_an_export_folder(exported, capsys):
    data = str(FIXTURES / "speech_input.csv")
    assert main(["speech", "predict", "--model", str(FIXTURES / "speech"), "--data", data, "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["speech", "predict", "--model", str(exported("speech")), "--data", data, "--json"]) == 0
    assert_same(json.loads(capsys.readouterr().out), want)
