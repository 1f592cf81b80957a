"""Robustness table of ``lstmkit speech``: bad manifests and bad audio through train (mostly ``--dry-run``,
which reads every manifest and every audio header), evaluate and predict against the fixture model (a
tiny CTC recogniser of tone "words" at 8 kHz), ``speech manifest``, and the Python API.

Every command case: exit code, message fragment, no traceback, exactly one ``error:`` line, nothing
half-written, earlier files byte-identical (harness.py). Cases with exit 0 check their output and
that a limit gives exactly one warning line.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import Case, put, run_case

sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

import lstmkit  # noqa: E402
from lstmkit.errors import LstmkitError  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "speech"
SR = 8000
TONES = {"a": 300.0, "b": 1000.0, "c": 2500.0}


def clip(text: str, seed: int = 0, sr: int = SR) -> np.ndarray:
    """0.1 s of each letter's tone and 0.04 s of silence, light noise (as the fixture was trained on)."""
    rng = np.random.default_rng(seed)
    parts = []
    for ch in text:
        t = np.arange(int(0.1 * sr)) / sr
        parts += [0.5 * np.sin(2 * np.pi * TONES[ch] * t), np.zeros(int(0.04 * sr))]
    x = np.concatenate(parts)
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audio files every case may name (outside the cases' folders)."""
    root = tmp_path_factory.mktemp("audio")
    for i, word in enumerate(["ab", "c", "ba", "a"]):
        sf.write(root / f"{i}.wav", clip(word, i), SR, subtype="PCM_16")
    sf.write(root / "zero.wav", np.zeros((0, 1), np.float32), SR)
    sf.write(root / "nan.wav", np.full(800, np.nan, np.float32), SR, subtype="FLOAT")
    sf.write(root / "huge.wav", clip("ab") * 1e30, SR, subtype="FLOAT")
    sf.write(root / "low.wav", clip("a", sr=100)[:50], 100)
    sf.write(root / "hi.wav", clip("c", sr=44100), 44100)
    sf.write(root / "stereo.wav", np.stack([clip("c"), clip("c", 1)], axis=1), SR)
    sf.write(root / "tiny.wav", clip("a")[:10], SR)
    sf.write(root / "long.wav", np.tile(clip("abc"), 140), SR, subtype="PCM_16")  # 140 × 0.42 s = 58.8 s
    sf.write(root / "longer.wav", np.tile(clip("abc"), 150), SR, subtype="PCM_16")  # 63 s
    (root / "text.wav").write_text("not audio at all\n")
    (root / "sub").mkdir()
    return root


@dataclass(frozen=True)
class SCase(Case):
    """A case with bytes on standard input and a check of (stdout, stderr) for the cases that work."""

    stdin: bytes | None = None
    check: Callable[[str, str], Any] | None = None


def rows(*rows: tuple[str, ...], header: str = "path,text") -> Callable[[dict[str, Path]], str]:
    """Manifest text: ``{a}`` in a row is the audio folder."""
    return lambda p: (header + "\n" + "".join(",".join(r) + "\n" for r in rows)).format(a=p["audio"])


GOOD = rows(("{a}/0.wav", "ab"), ("{a}/1.wav", "c"), ("{a}/2.wav", "ba"), ("{a}/3.wav", "a"))


def enc(
    text: Callable[[dict[str, Path]], str], encoding: str, prefix: bytes = b""
) -> Callable[[dict[str, Path]], bytes]:
    return lambda p: prefix + text(p).encode(encoding)


def train(data: Callable[[dict[str, Path]], Path] | str, *extra: Any, dry: bool = True):
    def argv(p: dict[str, Path]) -> list[Any]:
        d = data(p) if callable(data) else data
        flags = ["--dry-run"] if dry else ["--epochs", "1", "--hidden-size", "2", "--quiet", "--threads", "1"]
        return ["speech", "train", "--data", d, "--out", p["tmp"] / "o", "--sample-rate", SR, *flags, *extra]

    return argv


def evaluate(data: Callable[[dict[str, Path]], Path], *extra: Any):
    return lambda p: ["speech", "evaluate", "--model", p["m"], "--data", data(p), "--threads", "1", *extra]


def predict(data: Callable[[dict[str, Path]], Any] | None, *extra: Any):
    def argv(p: dict[str, Path]) -> list[Any]:
        return ["speech", "predict", "--model", p["m"], *(["--data", data(p)] if data else []), *extra]

    return argv


def wav(name: str) -> Callable[[dict[str, Path]], Path]:
    return lambda p: p["audio"] / name


def one_warning(fragment: str) -> Callable[[str, str], None]:
    def check(out: str, err: str) -> None:
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 1 and fragment in warnings[0], err

    return check


def warnings_are(*fragments: str) -> Callable[[str, str], None]:
    def check(out: str, err: str) -> None:
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == len(fragments) and all(f in w for f, w in zip(fragments, warnings)), err

    return check


def predicted(n: int) -> Callable[[str, str], None]:
    """``n`` CSV rows after the header, and nothing on stderr."""

    def check(out: str, err: str) -> None:
        table = list(csv.reader(io.StringIO(out)))
        assert table[0] == ["path", "prediction"] and len(table) == n + 1 and err == "", (out, err)
        assert all(len(r) == 2 and "\r" not in r[0] for r in table[1:]), out

    return check


def _old_model(p: dict[str, Path]) -> None:
    shutil.copytree(FIXTURE, p["tmp"] / "o")
    p["o"] = p["tmp"] / "o"


def _old_output(p: dict[str, Path]) -> None:
    (p["tmp"] / "prev.csv").write_text("path,prediction\nx.wav,ab\n")
    p["prev"] = p["tmp"] / "prev.csv"


CLASSES = rows(*[(f"{{a}}/{i}.wav", "yes" if i % 2 else "no") for i in range(4)])

CASES = [
    # --- empty, whitespace-only and header-only manifests, empty standard input
    SCase("empty-manifest", train(put("e.csv", "")), 2, "e.csv: empty file (expected a manifest CSV"),
    SCase("whitespace-only", train(put("w.csv", " \n\n  \n")), 2, "w.csv: empty file"),
    SCase("commas-only", train(put("c.csv", ",,\n ,\n")), 2, "c.csv: empty manifest"),
    SCase("header-only", train(put("h.csv", "path,text\n")), 2, "h.csv: manifest has a header but no rows"),
    SCase("predict-header-only", predict(put("h.csv", "path\n\n")), 2, "manifest has a header but no rows"),
    SCase(
        "predict-stdin-empty", predict(None), 2, "<stdin>: nothing on standard input; pipe audio file paths", stdin=b""
    ),
    SCase(
        "predict-stdin-blank-line-stays",
        predict(None),
        0,
        stdin=b"\n1.wav\n",
        check=lambda out, err: out.splitlines()[:2] == ["path,prediction", ","] and len(out.splitlines()) == 3,
    ),
    # --- delimiters, columns, ragged rows, empty fields
    SCase(
        "semicolons", train(put("s.csv", "path;text\n0.wav;ab\n")), 2, "columns: path;text): a manifest is comma-sep"
    ),
    SCase("tabs", evaluate(put("t.csv", "path\ttext\n0.wav\tab\n")), 2, "a manifest is comma-separated"),
    SCase("duplicate-column", train(put("d.csv", "path,text,text\n0.wav,ab,c\n")), 2, "column 'text' appears twice"),
    SCase("missing-column", train(put("m.csv", "path,label\n0.wav,ab\n")), 2, "column 'text' not found (columns: path"),
    SCase(
        "no-header", train(put("n.csv", rows(("{a}/1.wav", "c"), header="{a}/0.wav,ab"))), 2, "must name the columns"
    ),
    SCase("ragged-row", train(put("r.csv", "path,text\n0.wav,ab\n1.wav,c,x\n")), 2, "r.csv line 3: 3 fields, header"),
    SCase("empty-text", train(put("t.csv", "path,text\n0.wav, \n")), 2, "t.csv line 2: empty field 'text'"),
    SCase(
        "very-long-line",  # a 200,000-character label is odd but readable (no reader limit: --max-len-like limits cut)
        train(put("v.csv", lambda p: f"path,text\n{p['audio']}/0.wav,{'ab' * 100_000}\n")),
        0,
        "",
    ),
    SCase("empty-path", evaluate(put("p.csv", "path,text\n,ab\n")), 2, "p.csv line 2: empty field 'path'"),
    SCase(
        "quoted-fields-and-extra-columns-work",
        predict(put("q.csv", lambda p: f'speaker,path\n"smith, j",{p["audio"]}/1.wav\n')),
        0,
        check=predicted(1),
    ),
    # --- encodings and binary files
    SCase(
        "latin-1-manifest",
        train(put("l.csv", enc(rows(("{a}/0.wav", "größe")), "latin-1")), dry=False),
        2,
        "l.csv: line 2 is not valid UTF-8 (byte 0xf6 at column",
    ),
    SCase("evaluate-latin-1", evaluate(put("l.csv", enc(GOOD, "latin-1", b"\xe9"))), 2, "line 1 is not valid UTF-8"),
    SCase(
        "utf-16-manifest-works",
        evaluate(put("u.csv", enc(GOOD, "utf-16")), "--json"),
        0,
        check=lambda out, err: json.loads(out)["n"] == 4,
    ),
    SCase("nul-byte", train(put("n.csv", "path,text\n0.wav,a\x00b\n")), 2, "n.csv: line 2, column 8: binary data"),
    SCase("audio-as-manifest", evaluate(wav("0.wav")), 2, "0.wav: an audio file, not a manifest"),
    SCase("binary-manifest", train(put("b.csv", bytes(range(256)) * 3)), 2, "b.csv: line 1, column 1: binary data"),
    SCase(
        "utf-8-bom-works",
        evaluate(put("bom.csv", enc(GOOD, "utf-8", b"\xef\xbb\xbf")), "--json"),
        0,
        check=lambda out, err: json.loads(out)["n"] == 4,
    ),
    SCase(
        "windows-line-ends-work",
        predict(put("crlf.csv", lambda p: GOOD(p).replace("\n", "\r\n"))),
        0,
        check=predicted(4),
    ),
    SCase("stdin-not-utf-8", predict(None), 2, "<stdin>: line 2 is not valid UTF-8", stdin=b"0.wav\n\xff.wav\n"),
    # --- names that are not files
    SCase("data-is-a-folder", train(put("d/", "")), 2, "is a folder, not a manifest CSV"),
    SCase(
        "row-is-a-folder",
        train(put("f.csv", rows(("{a}/sub", "ab")))),
        2,
        "f.csv line 2: ",
        check=lambda out, err: "sub: is a folder, not an audio file" in err,
    ),
    SCase("audio-missing", train(put("g.csv", rows(("{a}/gone.wav", "ab")))), 2, "gone.wav: audio file not found"),
    SCase("predict-folder-without-audio", predict(put("d/", "")), 2, "no audio files (.wav/.flac/.ogg) found"),
    SCase("predict-missing", predict(lambda p: p["tmp"] / "gone.wav"), 2, "gone.wav: not found (expected a manifest"),
    SCase("train-from-stdin", train("-"), 2, "a manifest is read from a file"),
    # --- audio content: zero-length, unreadable, NaN, huge values, sample rates, channels, tiny clips
    SCase("zero-length", predict(wav("zero.wav")), 2, "zero.wav: empty audio file (0 samples)"),
    SCase(
        "evaluate-zero-length",
        evaluate(put("z.csv", rows(("{a}/zero.wav", "a")))),
        2,
        "z.csv line 2: ",
        check=lambda out, err: "zero.wav: empty audio file (0 samples)" in err,
    ),
    SCase(
        "train-zero-length",
        train(put("z.csv", rows(("{a}/0.wav", "a"), ("{a}/zero.wav", "a")))),
        2,
        "z.csv line 3: ",
        check=lambda out, err: "zero.wav: empty audio file (0 samples)" in err,
    ),
    SCase("unreadable", predict(wav("text.wav")), 2, "text.wav: unreadable audio file"),
    SCase("nan-samples", predict(wav("nan.wav")), 2, "nan.wav: audio contains NaN or infinite samples"),
    SCase(
        "huge-samples", evaluate(put("x.csv", rows(("{a}/huge.wav", "ab")))), 2, "but float audio lies within [-1, 1]"
    ),
    SCase("sample-rate-100-hz", predict(wav("low.wav")), 2, "sample rate 100 Hz is below 1000 Hz"),
    SCase("sample-rate-44100-works", predict(wav("hi.wav")), 0, check=predicted(1)),
    SCase("stereo-works", predict(wav("stereo.wav")), 0, check=predicted(1)),
    SCase("ten-samples-work", predict(wav("tiny.wav"), "--json"), 0, check=lambda out, err: err == ""),
    # --- limits: --max-seconds (cut, one warning), option ranges
    SCase("under-max-seconds", predict(wav("long.wav")), 0, check=lambda out, err: err == ""),
    SCase(
        "over-max-seconds",
        predict(wav("longer.wav")),
        0,
        check=one_warning("1 audio clip(s) longer than --max-seconds 60 are cut to their first 60 s"),
    ),
    SCase(
        "evaluate-max-seconds",
        evaluate(put("g.csv", GOOD), "--max-seconds", "0.2"),
        0,
        check=one_warning("2 audio clip(s) longer than --max-seconds 0.2 are cut to their first 0.2 s"),
    ),
    SCase(
        "dry-run-counts-long-clips",
        train(put("g.csv", GOOD), "--max-seconds", "0.1"),
        0,
        check=one_warning("4 audio clip(s) longer than --max-seconds 0.1"),
    ),
    SCase(
        "train-warns-once-per-data-set",
        lambda p: [
            *train(put("t.csv", CLASSES), "--max-seconds", "0.2", dry=False)(p),
            *("--valid", put("v.csv", rows(("{a}/0.wav", "no"), ("{a}/3.wav", "yes")))(p)),
        ],
        0,
        check=warnings_are("2 audio clip(s) longer than --max-seconds 0.2", "1 audio clip(s) longer"),
    ),
    SCase(
        "max-seconds-zero",
        train(put("g.csv", GOOD), "--max-seconds", "0"),
        2,
        "max_seconds (--max-seconds) must be > 0",
    ),
    SCase("max-seconds-inf", predict(wav("0.wav"), "--max-seconds", "inf"), 2, "must be a finite number"),
    SCase("beam-width-huge", predict(wav("0.wav"), "--beam-width", "1e9"), 2, "beam_width (--beam-width) must be"),
    SCase("decoder-typo", predict(wav("0.wav"), "--decoder", "bem"), 2, "must be one of greedy, beam, got 'bem'"),
    SCase("n-mels-over-bins", train(put("g.csv", GOOD), "--n-mels", "2000"), 2, "n_mels (--n-mels) must be <= 129"),
    SCase("window-huge", train(put("g.csv", GOOD), "--win-ms", "1e9"), 2, "win_ms (--win-ms) must be <= 1000"),
    SCase(
        "subsample-huge", train(put("g.csv", GOOD), "--subsample", "100000"), 2, "subsample (--subsample) must be <="
    ),
    SCase(
        "sample-rate-huge", train(put("g.csv", GOOD), "--sample-rate", "1e12"), 2, "sample_rate (--sample-rate) must"
    ),
    SCase("time-masks-huge", train(put("g.csv", GOOD), "--time-masks", "1000000"), 2, "time_masks (--time-masks) must"),
    # --- labels and characters unseen in training
    SCase(
        "evaluate-unseen-characters",
        evaluate(put("x.csv", rows(("{a}/0.wav", "abx"), ("{a}/1.wav", "c")))),
        0,
        check=one_warning("x.csv line 2: 1 reference(s) with characters outside the model's alphabet"),
    ),
    SCase(
        "valid-label-unseen",
        lambda p: [
            *train(put("t.csv", CLASSES), dry=False)(p),
            "--valid",
            put("v.csv", rows(("{a}/0.wav", "maybe")))(p),
        ],
        2,
        "v.csv line 2: label 'maybe' does not occur in the training data",
    ),
    SCase(
        "valid-characters-unseen",
        lambda p: [
            *train(put("t.csv", GOOD), "--mode", "ctc", dry=False)(p),
            *("--valid", put("v.csv", rows(("{a}/0.wav", "ax")))(p)),
        ],
        2,
        "v.csv line 2: characters ['x'] are not in the alphabet",
    ),
    # --- --on-error
    SCase(
        "skip-keeps-rows-aligned",
        predict(
            put("k.csv", rows(("{a}/1.wav", "c"), ("{a}/gone.wav", "a"), ("{a}/zero.wav", "b"))), "--on-error", "skip"
        ),
        0,
        check=lambda out, err: (
            [bool(r.split(",")[1]) for r in out.splitlines()[1:]] == [True, False, False]
            and err.count("(skipped)") == 2
        ),
    ),
    SCase(
        "skip-everything",
        evaluate(put("k.csv", rows(("{a}/gone.wav", "a"), ("{a}/text.wav", "b"))), "--on-error", "skip"),
        2,
        "no readable audio files (all 2 were skipped)",
    ),
    SCase("on-error-typo", predict(wav("0.wav"), "--on-error", "ignore"), 2, "must be one of fail, skip"),
    # --- speech manifest
    SCase(
        "manifest-folder-missing",
        lambda p: ["speech", "manifest", "--data", p["tmp"] / "none", "--out", p["tmp"] / "man"],
        2,
        "none: folder not found",
    ),
    SCase(
        "manifest-bad-test-index",
        lambda p: ["speech", "manifest", "--data", p["audio"], "--out", p["tmp"] / "man", "--test-index", "a-b"],
        2,
        "--test-index: cannot parse 'a-b'",
    ),
    SCase(
        "manifest-pattern-without-text",
        lambda p: ["speech", "manifest", "--data", p["audio"], "--out", p["tmp"] / "man", "--pattern", "{speaker}.wav"],
        2,
        "must contain {text}",
    ),
    SCase(
        "manifest-out-is-a-file",
        lambda p: [
            "speech",
            "manifest",
            "--data",
            p["audio"],
            "--out",
            put("f.txt", "x")(p),
            "--pattern",
            "{text}.wav",
        ],
        2,
        "f.txt: exists and is not a folder",
    ),
    # --- nothing lost: an earlier model and an earlier output stay byte-identical
    SCase(
        "overwrite-with-bad-manifest",
        train(put("l.csv", enc(GOOD, "latin-1", b"\xe9")), "--overwrite", dry=False),
        2,
        "not valid UTF-8",
        setup=_old_model,
        keep=("o",),
    ),
    SCase(
        "predict-output-kept",
        lambda p: [*predict(wav("zero.wav"))(p), "--output", p["tmp"] / "prev.csv"],
        2,
        "empty audio file",
        setup=_old_output,
        keep=("prev",),
    ),
]


@pytest.fixture
def places(tmp_path: Path, audio: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(audio)  # relative paths on standard input are read from here
    return {"tmp": tmp_path, "m": FIXTURE, "audio": audio}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_speech_command_line(case: SCase, places, capsys, monkeypatch):
    if case.stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8"))
    out, err = run_case(
        Case(case.id, case.argv, case.code, case.fragment, case.stream, case.setup, ("m", "audio", *case.keep)),
        places,
        capsys,
    )
    if case.check is not None:
        assert case.check(out, err) is not False, (out, err)


# ------------------------------------------------------------------------------------------ Python API
@pytest.fixture(scope="module")
def model():
    return lstmkit.load(FIXTURE)


TRAIN_DATA: list[tuple[str, Callable[[Path], Any], str]] = [
    ("none", lambda a: None, "data: expected a manifest CSV or a list of (audio path, text) pairs, got NoneType"),
    ("int", lambda a: 7, "got int"),
    ("bytes", lambda a: b"path,text\n", "got bytes"),
    ("dict", lambda a: {str(a / "0.wav"): "ab"}, "got dict"),
    ("empty-list", lambda a: [], "data: no examples"),
    ("bare-path", lambda a: [str(a / "0.wav")], "data item 1: expected an (audio path, text) pair, got '"),
    ("one-tuple", lambda a: [(str(a / "0.wav"),)], "data item 1: expected an (audio path, text) pair"),
    ("number-text", lambda a: [(str(a / "0.wav"), "ab"), (str(a / "1.wav"), 5)], "data item 2: the text must be"),
    ("none-text", lambda a: [(str(a / "0.wav"), None)], "the text must be a non-empty string, got None"),
    ("blank-text", lambda a: [(str(a / "0.wav"), "  ")], "the text must be a non-empty string"),
    ("number-path", lambda a: [(123, "ab")], "the audio path must be a non-empty str or Path, got 123"),
    ("audio-file-as-data", lambda a: a / "0.wav", "an audio file, not a manifest"),
    ("folder-as-data", lambda a: a, "is a folder, not a manifest CSV"),
]


@pytest.mark.parametrize(("data", "fragment"), [t[1:] for t in TRAIN_DATA], ids=[t[0] for t in TRAIN_DATA])
def test_train_in_memory_data(audio, data, fragment):
    with pytest.raises(LstmkitError) as info:
        lstmkit.train("speech", data=data(audio), epochs=1, quiet=True, sample_rate=SR)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and len(msg) < 600, msg


FEATS = np.zeros((20, 6), np.float32)  # (T, F) for the fixture's 6 MFCCs
PREDICTOR_CALLS: list[tuple[str, Callable[[Any, Path], Any], str]] = [
    ("predict-none", lambda m, a: m.predict(None), "input 1: expected an audio file path or a waveform, got NoneType"),
    ("predict-bytes", lambda m, a: m.predict(b"0.wav"), "got bytes"),
    ("predict-int16", lambda m, a: m.predict((clip("a") * 3e4).astype(np.int16)), "integer samples (int16)"),
    ("predict-2d", lambda m, a: m.predict(np.zeros((100, 2), np.float32)), "a waveform must be 1-D (N,)"),
    ("predict-complex", lambda m, a: m.predict(np.zeros(100, np.complex64)), "real float samples, got dtype complex64"),
    ("predict-nan", lambda m, a: m.predict(np.full(100, np.nan, np.float32)), "waveform contains NaN or infinite"),
    ("predict-huge", lambda m, a: m.predict(clip("a") * 1e30), "but float audio lies within [-1, 1]"),
    ("predict-empty-wave", lambda m, a: m.predict(np.zeros(0, np.float32)), "input 1: empty waveform (0 samples)"),
    ("predict-list-of-floats", lambda m, a: m.predict([0.1, 0.2]), "input 1: expected an audio file path"),
    ("predict-bad-option", lambda m, a: m.predict(a / "0.wav", decoder="bem"), "decoder (--decoder) must be one of"),
    ("predict-max-seconds", lambda m, a: m.predict(a / "0.wav", max_seconds=-1), "max_seconds (--max-seconds) must"),
    ("features-decoder-typo", lambda m, a: m.predict_features([FEATS], decoder="bem"), "must be one of greedy, beam"),
    ("features-beam-zero", lambda m, a: m.predict_features([FEATS], beam_width=0), "beam_width (--beam-width) must"),
    ("features-wrong-width", lambda m, a: m.predict_features([FEATS[:, :3]]), "expected (T >= 1, 6) features, got"),
    ("features-no-frames", lambda m, a: m.predict_features([FEATS[:0]]), "got shape (0, 6)"),
    ("features-1d", lambda m, a: m.predict_features([FEATS[0]]), "expected a (T, 6) feature array, got shape (6,)"),
    ("features-nan", lambda m, a: m.predict_features([FEATS + np.nan]), "features must be finite"),
    ("features-a-string", lambda m, a: m.predict_features("0.wav"), "got str"),
    ("wave-sample-rate-zero", lambda m, a: m.predict_wave(clip("a"), sample_rate=0), "sample_rate: expected a whole"),
    ("wave-a-list", lambda m, a: m.predict_wave([str(a / "0.wav")]), "expected a waveform (a 1-D numpy array)"),
    ("file-a-list", lambda m, a: m.predict_file([str(a / "0.wav")]), "expected the path of one audio file, got list"),
    ("evaluate-none", lambda m, a: m.evaluate(None), "got NoneType"),
    ("evaluate-bare-paths", lambda m, a: m.evaluate([str(a / "0.wav")]), "data item 1: expected an (audio path"),
    ("trace-gates-number", lambda m, a: m.trace_gates(5), "expected an audio file path or a waveform, got int"),
    ("step-labels-folder", lambda m, a: m.step_labels(str(a / "sub")), "sub: is a folder, not an audio file"),
]


@pytest.mark.parametrize(("call", "fragment"), [c[1:] for c in PREDICTOR_CALLS], ids=[c[0] for c in PREDICTOR_CALLS])
def test_predictor_refuses_bad_calls(model, audio, call, fragment):
    with pytest.raises(LstmkitError) as info:
        call(model, audio)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and len(msg) < 600, msg


def test_one_array_is_one_utterance_and_long_waves_are_cut(model, capsys):
    feats = model.extractor(clip("c"))
    assert model.predict_features(feats) == model.predict_features([feats]) and len(model.predict_features(feats)) == 1
    out = model.predict([clip("c"), np.tile(clip("c"), 10)], max_seconds=1.0)  # 0.14 s and 1.4 s
    assert len(out) == 2 and out[0].text == model.predict(clip("c"))[0].text
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 audio clip(s) longer than --max-seconds 1 are cut to their first 1 s" in err
    assert "(the longest: input 2, 1.4 s)" in err
