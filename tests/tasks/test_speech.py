"""Speech task: CTC decoding on hand-made tables, the network, training, save/reload, CLI, bad input."""

from __future__ import annotations

import csv
import itertools
import json
import math

import numpy as np
import pytest
import torch

sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

from lstmkit.cli.main import main  # noqa: E402
from lstmkit.data.audio import FeatureConfig  # noqa: E402
from lstmkit.tasks.speech import SpeechConfig, fit, load_predictor, score  # noqa: E402
from lstmkit.tasks.speech_decode import beam_decode, greedy_decode, sequence_log_prob  # noqa: E402
from lstmkit.tasks.speech_model import stack_frames  # noqa: E402
from lstmkit.train import TrainConfig  # noqa: E402

SR = 8000
TONES = {"a": 300.0, "b": 1000.0, "c": 2500.0}


# ------------------------------------------------------------------------------------ decoding
def log_softmax(x: np.ndarray) -> np.ndarray:
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def brute_force_best(lp: np.ndarray) -> tuple[int, ...]:
    """Most probable labelling by summing every path (only for tiny T, C)."""
    T, C = lp.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        lab = tuple(greedy_decode(np.eye(C)[list(path)]))
        totals[lab] = totals.get(lab, 0.0) + math.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return max(totals, key=totals.get)


def test_greedy_collapses_repeats_and_drops_blanks():
    # frames argmax: a a _ a b b _ _  -> "a a b" (blank between the two a's keeps both)
    best = [1, 1, 0, 1, 2, 2, 0, 0]
    assert greedy_decode(np.log(np.eye(3)[best] * 0.9 + 0.05)) == [1, 1, 2]
    assert greedy_decode(np.zeros((0, 3))) == []


def test_beam_finds_the_labelling_greedy_misses():
    # p(blank)=0.6 per frame: best path is "__" (0.36) but p("a") = 0.4*0.4+0.4*0.6*2 = 0.64
    lp = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert greedy_decode(lp) == [] and beam_decode(lp, beam_width=4) == [1]
    assert math.exp(sequence_log_prob(lp, [1])) == pytest.approx(0.64)
    assert math.exp(sequence_log_prob(lp, [])) == pytest.approx(0.36)


def test_beam_matches_brute_force_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(15):
        lp = log_softmax(rng.normal(size=(5, 3)) * 2)
        assert tuple(beam_decode(lp, beam_width=20, prune=-1e9)) == brute_force_best(lp)


def test_sequence_log_prob_matches_torch_ctc_loss():
    rng = np.random.default_rng(1)
    lp = log_softmax(rng.normal(size=(7, 4)))
    labels = [1, 1, 3]
    ref = torch.nn.functional.ctc_loss(torch.tensor(lp).unsqueeze(1), torch.tensor([labels]), [7], [3], reduction="sum")
    assert -sequence_log_prob(lp, labels) == pytest.approx(ref.item(), rel=1e-6)


def test_stack_frames_shapes():
    x = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    y, lengths = stack_frames(x, torch.tensor([5, 3]), 2)
    assert y.shape == (2, 3, 6) and lengths.tolist() == [3, 2]
    assert torch.equal(y[0, 0], torch.cat([x[0, 0], x[0, 1]]))
    assert torch.equal(y[0, 2, 3:], torch.zeros(3))  # padded frame


def test_score_uses_jiwer_rates():
    m = score("ctc", ["one two", "three"], ["one too", "three"])
    assert m["wer"] == pytest.approx(1 / 3) and m["sentence_accuracy"] == 0.5
    assert m["cer"] == pytest.approx(1 / 12)
    assert score("classify", ["1", "2"], ["1", "1"]) == {"accuracy": 0.5}


# ------------------------------------------------------------------------------------ data
def clip(text: str, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    parts = []
    for ch in text:
        t = np.arange(int(0.1 * sr)) / sr
        parts += [0.5 * np.sin(2 * np.pi * TONES[ch] * t), np.zeros(int(0.04 * sr))]
    x = np.concatenate(parts)
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tone 'words': classify clips a/b/c named {text}_{speaker}_{index}.wav and ctc clips of 1-3 tones."""
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    (root / "clips").mkdir()
    for i in range(8):
        for ch in "abc":
            sr = SR if i % 2 else 16000  # mixed sample rates
            sf.write(root / "clips" / f"{ch}_tone_{i}.wav", clip(ch, rng, sr), sr)
    rows = [["path", "text"]]
    for i in range(30):
        text = "".join(rng.choice(list("abc"), size=int(rng.integers(1, 4))))
        sf.write(root / f"s{i}.wav", clip(text, rng), SR)
        rows.append([f"s{i}.wav", text])
    with open(root / "ctc.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def small_cfg(mode: str, **kw) -> SpeechConfig:
    return SpeechConfig(
        mode=mode,
        features=FeatureConfig(sample_rate=SR, n_mfcc=13, deltas=1),
        hidden_size=24,
        num_layers=1,
        dropout=0.0,
        valid_fraction=0.2,
        **kw,
    )


def tcfg(epochs: int, **kw) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=8, lr=1e-2, device="cpu", quiet=True, patience=0, **kw)


@pytest.fixture(scope="module")
def classify_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "model"
    assert main(["speech", "manifest", str(data / "clips"), "--test-index", "0-1", "--out", str(data / "man")]) == 0
    predictor, metrics = fit(data / "man" / "train.csv", small_cfg("classify", specaugment=True), tcfg(8), out)
    return out, predictor, metrics


@pytest.fixture(scope="module")
def ctc_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctc") / "model"
    predictor, metrics = fit(data / "ctc.csv", small_cfg("ctc", subsample=2), tcfg(20), out)
    return out, predictor, metrics


# ------------------------------------------------------------------------------------ models
def test_classify_learns_and_reloads_exactly(classify_model, data):
    out, predictor, metrics = classify_model
    assert {"config.json", "model.safetensors", "norm.json", "labels.json", "metrics.json"} <= {
        p.name for p in out.iterdir()
    }
    assert metrics["n_train"] == 14 and metrics["n_valid"] == 4
    ev = predictor.evaluate(data / "man" / "test.csv")
    assert ev["n"] == 6 and ev["accuracy"] >= 5 / 6 and ev["rtf"] > 0
    loaded = load_predictor(out)
    feats = [predictor.extractor(np.asarray(clip(c, np.random.default_rng(5)))) for c in "abc"]
    x = torch.from_numpy(predictor.features(clip("b", np.random.default_rng(5)))).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(
            predictor.net(x, torch.tensor([x.shape[1]]))[0], loaded.net(x, torch.tensor([x.shape[1]]))[0]
        )
    assert loaded.predict_features(feats) == predictor.predict_features(feats)


def test_ctc_learns_transcripts_and_beam_agrees(ctc_model, data):
    out, predictor, _ = ctc_model
    greedy = predictor.evaluate(data / "ctc.csv")
    assert greedy["cer"] < 0.3, greedy
    beam = load_predictor(out).evaluate(data / "ctc.csv", decoder="beam", beam_width=4)
    assert beam["cer"] <= greedy["cer"] + 0.05
    gates = predictor.trace_gates(data / "s0.wav")
    assert len(gates) == 2 and gates[0].f.shape[0] == 1 and gates[0].f.shape[2] == 24
    assert len(predictor.step_labels(predictor.inspect_sample(data / "ctc.csv", 0))) == gates[0].f.shape[1]


def test_same_seed_same_metrics_via_cli(data, tmp_path, capsys):
    rows = (data / "ctc.csv").read_text().splitlines()[:13]  # 12 clips are enough to compare two runs
    (data / "ctc12.csv").write_text("\n".join(rows) + "\n")
    args = [
        "speech",
        "train",
        "--data",
        str(data / "ctc12.csv"),
        "--mode",
        "ctc",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--hidden-size",
        "8",
        "--num-layers",
        "1",
        "--sample-rate",
        str(SR),
        "--valid-fraction",
        "0.25",
        "--device",
        "cpu",
        "--quiet",
        "--seed",
        "3",
        "--specaugment",
    ]
    assert main(args + ["--out", str(tmp_path / "m1")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args + ["--out", str(tmp_path / "m2")]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["valid"] == second["valid"] and "cer" in first["valid"]
    assert json.loads((tmp_path / "m1" / "config.json").read_text())["speech"]["mode"] == "ctc"


# ------------------------------------------------------------------------------------ CLI
def test_cli_evaluate_json_and_predict(classify_model, data, tmp_path, capsys):
    out = classify_model[0]
    assert main(["speech", "evaluate", "--model", str(out), "--data", str(data / "man" / "test.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert set(metrics) >= {"accuracy", "n", "rtf"}
    assert main(["speech", "predict", "--model", str(out), str(data / "clips" / "c_tone_0.wav")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,prediction" and len(lines) == 2 and lines[1].split(",")[1] in "abc"
    assert main(["speech", "predict", "--model", str(out), str(data / "clips"), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 25


def test_cli_bad_input_exit_2_or_skip(classify_model, data, tmp_path, capsys):
    out = classify_model[0]
    (tmp_path / "broken.wav").write_bytes(b"")
    with open(tmp_path / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows(
            [["path", "text"], [str(data / "clips" / "a_tone_0.wav"), "a"], ["missing.wav", "b"], ["broken.wav", "z"]]
        )
    capsys.readouterr()
    assert main(["speech", "evaluate", "--model", str(out), "--data", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: m.csv line 3:") and "missing.wav" in err
    assert "Traceback" not in err and "'z'" in err  # a label the model never predicts is warned about
    assert (
        main(
            [
                "speech",
                "evaluate",
                "--model",
                str(out),
                "--data",
                str(tmp_path / "m.csv"),
                "--on-error",
                "skip",
                "--json",
            ]
        )
        == 0
    )
    cap = capsys.readouterr()
    assert json.loads(cap.out)["n"] == 1 and "broken.wav" in cap.err and "missing.wav" in cap.err
    assert main(["speech", "predict", "--model", str(tmp_path / "nope"), str(tmp_path)]) == 2


def test_train_rejects_valid_characters_outside_alphabet(data, tmp_path):
    with open(tmp_path / "v.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text"], [str(data / "s0.wav"), "abx"]])
    rc = main(
        [
            "speech",
            "train",
            "--data",
            str(data / "ctc.csv"),
            "--valid",
            str(tmp_path / "v.csv"),
            "--mode",
            "ctc",
            "--sample-rate",
            str(SR),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "m"),
            "--quiet",
        ]
    )
    assert rc == 2 and not (tmp_path / "m" / "config.json").exists()
