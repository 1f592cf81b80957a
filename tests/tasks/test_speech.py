"""Speech task: CTC decoding on hand-made tables, the network, training, save/reload, predict's
inputs and outputs, CLI, bad input."""

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

import lstmkit  # noqa: E402
from lstmkit.cli.main import main  # noqa: E402
from lstmkit.errors import DataError, LstmkitError, ModelFolderError  # noqa: E402
from lstmkit.io import to_jsonable  # noqa: E402
from lstmkit.tasks.speech.config import SpeechConfig  # noqa: E402
from lstmkit.tasks.speech.data import augment_config, feature_config  # noqa: E402
from lstmkit.tasks.speech.decode import beam_decode, greedy_decode, sequence_log_prob  # noqa: E402
from lstmkit.tasks.speech.metrics import score  # noqa: E402
from lstmkit.tasks.speech.model import SpeechNet, stack_frames  # noqa: E402

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


# ------------------------------------------------------------------------------------ settings
def test_settings_become_the_audio_modules_objects_and_the_network():
    cfg = SpeechConfig().build(
        sample_rate=8000,
        features="fbank",
        n_mels=20,
        deltas=1,
        fmax=3000.0,
        time_ratio=0.5,
        mask_value=-1.0,
        hidden_size=6,
        num_layers=1,
        pooling="last",
        subsample=3,
    )
    f, a = feature_config(cfg.audio), augment_config(cfg.augment)
    assert (f.kind, f.sample_rate, f.n_mels, f.deltas, f.fmax, f.dim) == ("fbank", 8000, 20, 1, 3000.0, 40)
    assert (a.time_ratio, a.value) == (0.5, -1.0) and cfg.audio.dim == f.dim
    net = SpeechNet(cfg, {"input_size": 40, "num_outputs": 5}).eval()
    assert net.lstm.input_size == 120 and net.head.in_features == 12  # 3 stacked frames; last: fwd ‖ bwd
    x = torch.randn(2, 7, 40)
    x[1, 4:] = 0  # zero padding, as collate pads
    out, lengths = net(x, torch.tensor([7, 4]))
    assert out.shape == (2, 5) and lengths.tolist() == [3, 2]
    alone, _ = net(x[1:, :4], torch.tensor([4]))
    torch.testing.assert_close(out[1:], alone, rtol=1e-5, atol=1e-6)  # padded steps never count


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_mfcc": 50}, "n_mfcc (--n-mfcc) must be <= --n-mels (40), got 50"),
        ({"sample_rate": 500}, "sample_rate (--sample-rate) must be >= 1000, got 500"),
        ({"fmax": 9000.0}, "fmax (--fmax) must be <= half the sample rate (8000 Hz)"),
        ({"deltas": 3}, "deltas (--deltas) must be <= 2, got 3"),
        (
            {"monitor": "accuracy", "mode": "ctc"},
            "monitor (--monitor) must be one of wer, cer, sentence_accuracy, valid_loss",
        ),
        ({"beam_width": 0}, "beam_width (--beam-width) must be >= 1"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(LstmkitError) as info:
        SpeechConfig().build(settings)
    assert message in str(info.value) and "\n" not in str(info.value)


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


SMALL = dict(
    sample_rate=SR,
    n_mfcc=13,
    deltas=1,
    hidden_size=24,
    num_layers=1,
    dropout=0.0,
    valid_fraction=0.2,
    batch_size=8,
    lr=1e-2,
    device="cpu",
    patience=0,
)


@pytest.fixture(scope="module")
def classify_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "model"
    args = ["speech", "manifest", "--data", str(data / "clips"), "--test-index", "0-1", "--out", str(data / "man")]
    assert main(args) == 0
    result = lstmkit.train(
        "speech", data / "man" / "train.csv", out=out, quiet=True, epochs=8, specaugment=True, **SMALL
    )
    return out, result


@pytest.fixture(scope="module")
def ctc_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctc") / "model"
    result = lstmkit.train("speech", data / "ctc.csv", out=out, quiet=True, mode="ctc", subsample=2, epochs=20, **SMALL)
    return out, result


# ------------------------------------------------------------------------------------ models
def test_classify_learns_and_reloads_exactly(classify_model, data):
    out, result = classify_model
    predictor, metrics = result.predictor, result.metrics
    assert {"config.json", "model.safetensors", "norm.json", "labels.json", "metrics.json"} <= {
        p.name for p in out.iterdir()
    }
    assert metrics["n_train"] == 14 and metrics["valid"]["n"] == 4  # 18 rows, 20 % held out
    assert json.loads((out / "metrics.json").read_text())["valid"] == to_jsonable(metrics["valid"])
    ev = predictor.evaluate(data / "man" / "test.csv")
    assert ev["n"] == 6 and ev["accuracy"] >= 5 / 6 and ev["rtf"] > 0
    loaded = lstmkit.load(out)
    feats = [predictor.extractor(np.asarray(clip(c, np.random.default_rng(5)))) for c in "abc"]
    x = torch.from_numpy(predictor.features(clip("b", np.random.default_rng(5)))).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(
            predictor.model(x, torch.tensor([x.shape[1]]))[0], loaded.model(x, torch.tensor([x.shape[1]]))[0]
        )
    assert loaded.predict_features(feats) == predictor.predict_features(feats)


def test_predict_takes_one_path_a_list_a_manifest_a_folder_or_a_wave(classify_model, data):
    predictor = lstmkit.load(classify_model[0])
    wav = str(data / "clips" / "c_tone_0.wav")
    one = predictor.predict(wav)  # a string is ONE path
    assert len(one) == 1 and one[0].path == wav and one[0].text == "c" and one[0].error is None
    many = predictor.predict([wav, "", str(data / "clips" / "a_tone_0.wav")])
    assert [o.text for o in many] == ["c", None, "a"]  # the empty input keeps its place
    manifest = predictor.predict(data / "man" / "test.csv")
    assert [o.path for o in manifest] == [f"../clips/{c}_tone_{i}.wav" for c in "abc" for i in (0, 1)]  # as written
    assert [o.text for o in manifest] == [c for c in "abc" for _ in (0, 1)]
    folder = predictor.predict(data / "clips")
    assert len(folder) == 24 and folder[0].path == str(data / "clips" / "a_tone_0.wav")
    wave = sf.read(data / "clips" / "b_tone_1.wav", dtype="float32")[0]  # recorded at the model's 8 kHz
    assert predictor.predict(wave) == [(None, "b", None)]  # a numpy array is one waveform, no path
    assert predictor.predict([wave, wave[:800]])[0].text == "b" and predictor.predict_file(wav) == "c"
    assert json.loads(json.dumps(to_jsonable(many)))[1] == {"path": "", "text": None, "error": None}


def test_predict_skip_keeps_rows_aligned_and_fail_is_one_line(classify_model, data, tmp_path, capsys):
    predictor = lstmkit.load(classify_model[0])
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), SR)
    items = [
        str(data / "clips" / "a_tone_0.wav"),
        str(tmp_path / "empty.wav"),
        np.zeros(0, np.float32),
        str(tmp_path / "gone.wav"),
    ]
    out = predictor.predict(items, on_error="skip")
    assert [o.text for o in out] == ["a", None, None, None]
    assert "empty audio file (0 samples)" in out[1].error and out[2].error == "input 3: empty waveform (0 samples)"
    assert "gone.wav: audio file not found" in out[3].error
    assert capsys.readouterr().err.count("(skipped)") == 3
    with pytest.raises(DataError, match="empty.wav: empty audio file") as info:
        predictor.predict(items)
    assert "\n" not in str(info.value)
    with pytest.raises(LstmkitError, match="on_error"):
        predictor.predict(items, on_error="ignore")


def test_ctc_learns_transcripts_and_beam_agrees(ctc_model, data):
    out, result = ctc_model
    predictor = result.predictor
    greedy = predictor.evaluate(data / "ctc.csv")
    assert greedy["cer"] < 0.3, greedy
    beam = lstmkit.load(out).evaluate(data / "ctc.csv", decoder="beam", beam_width=4)
    assert beam["cer"] <= greedy["cer"] + 0.05
    gates = predictor.trace_gates(data / "s0.wav")
    assert len(gates) == 2 and gates[0].f.shape[0] == 1 and gates[0].f.shape[2] == 24
    assert len(predictor.step_labels(predictor.inspect_sample(str(data / "ctc.csv"), 0))) == gates[0].f.shape[1]


def test_monitor_mode_follows_the_monitored_metric(data, capsys):
    rows = (data / "ctc.csv").read_text().splitlines()[:9]
    (data / "ctc8.csv").write_text("\n".join(rows) + "\n")
    res = lstmkit.train(
        "speech",
        data / "ctc8.csv",
        quiet=True,
        mode="ctc",
        epochs=1,
        monitor="sentence_accuracy",
        **{**SMALL, "hidden_size": 4, "valid_fraction": 0.25},
    )
    assert res.predictor.config.train.monitor_mode == "max"
    assert "--monitor sentence_accuracy is better larger: --monitor-mode max" in capsys.readouterr().err


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
        "--json",
    ]
    assert main(args + ["--out", str(tmp_path / "m1")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args + ["--out", str(tmp_path / "m2")]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["training"] == second["training"] and "cer" in first["training"]
    assert first["valid"]["cer"] == second["valid"]["cer"]
    saved = json.loads((tmp_path / "m1" / "config.json").read_text())
    assert saved["task"] == "speech" and saved["config"]["mode"] == "ctc" and saved["config"]["augment"]["specaugment"]


# ------------------------------------------------------------------------------------ CLI
def test_cli_evaluate_json_and_predict(classify_model, data, tmp_path, capsys):
    out = classify_model[0]
    capsys.readouterr()
    assert main(["speech", "evaluate", "--model", str(out), "--data", str(data / "man" / "test.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert set(metrics) >= {"accuracy", "n", "rtf"}
    assert main(["speech", "predict", "--model", str(out), "--data", str(data / "clips" / "c_tone_0.wav")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,prediction" and len(lines) == 2 and lines[1].split(",")[1] in "abc"
    assert (
        main(
            [
                "speech",
                "predict",
                "--model",
                str(out),
                "--data",
                str(data / "clips"),
                "--output",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 25
    assert main(["speech", "predict", "--model", str(out), "--data", str(data / "man" / "test.csv"), "--json"]) == 0
    assert [r["text"] for r in json.loads(capsys.readouterr().out)] == [c for c in "abc" for _ in (0, 1)]


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
    args = [
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
    assert main(args) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["n"] == 1 and "broken.wav" in cap.err and "missing.wav" in cap.err
    assert (
        main(["speech", "predict", "--model", str(out), "--data", str(tmp_path / "m.csv"), "--on-error", "skip"]) == 0
    )
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"{data / 'clips' / 'a_tone_0.wav'},a",
        "missing.wav,",
        "broken.wav,",
    ]
    assert main(["speech", "predict", "--model", str(tmp_path / "nope"), "--data", str(tmp_path)]) == 2
    assert main(["speech", "train", "--data", "x.csv", "--out", str(tmp_path / "o"), "--unidirectional"]) == 2
    assert "--unidirectional is now --no-bidirectional" in capsys.readouterr().err


def test_train_rejects_valid_characters_outside_alphabet(data, tmp_path, capsys):
    with open(tmp_path / "v.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text"], [str(data / "s0.wav"), "abx"]])
    args = [
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
    assert main(args) == 2
    assert "v.csv line 2: characters ['x'] are not in the alphabet" in capsys.readouterr().err
    assert not (tmp_path / "m" / "config.json").exists()


def test_dry_run_checks_audio_files_and_too_short_clips_fail(data, tmp_path, capsys):
    with open(tmp_path / "d.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text"], [str(data / "s0.wav"), "a"], [str(tmp_path / "gone.wav"), "b"]])
    base = ["speech", "train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "m"), "--dry-run"]
    assert main(base) == 2
    assert "d.csv line 3: " in capsys.readouterr().err
    assert main([*base, "--on-error", "skip"]) == 0
    assert "gone.wav: audio file not found" in capsys.readouterr().err
    long = tmp_path / "long.csv"
    long.write_text(f"path,text\n{data / 's0.wav'},abcabcabcabcabcabc\n{data / 's1.wav'},a\n")
    with pytest.raises(DataError, match="long.csv line 2: .* frames after --subsample 8 cannot carry 18 CTC labels"):
        lstmkit.train("speech", long, mode="ctc", subsample=8, sample_rate=SR, epochs=1, valid_fraction=0, quiet=True)


def test_broken_transforms_are_model_folder_errors_naming_the_file(classify_model, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(classify_model[0], folder, ignore=shutil.ignore_patterns("checkpoint"))
    labels = json.loads((folder / "labels.json").read_text())
    (folder / "labels.json").write_text(json.dumps({**labels, "tokens": labels["tokens"][:-1]}))
    with pytest.raises(ModelFolderError, match=r"labels.json: 2 labels, the model has 3 outputs"):
        lstmkit.load(folder)
    (folder / "labels.json").write_text(json.dumps(labels))
    norm = json.loads((folder / "norm.json").read_text())
    (folder / "norm.json").write_text(json.dumps({**norm, "mean": norm["mean"][:-1]}))
    with pytest.raises(ModelFolderError, match=r"norm.json: 25 means and 26 stds for 26 features"):
        lstmkit.load(folder)
