"""Audio input: WAV reading, manifests, features (checked against librosa), normalisation, SpecAugment."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_dir

sf = pytest.importorskip("soundfile")
librosa = pytest.importorskip("librosa")

from lstmkit.data.audio import (  # noqa: E402
    FeatureConfig,
    FeatureExtractor,
    FeatureNorm,
    SpecAugmentConfig,
    featurize_files,
    read_wav,
    spec_augment,
)
from lstmkit.data.manifest import build_manifest, parse_index_spec, pattern_regex, read_manifest  # noqa: E402
from lstmkit.errors import DataError  # noqa: E402

FSDD = data_dir("fsdd") / "recordings"


def tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


# ------------------------------------------------------------------------------------ reading
def test_read_wav_resamples_and_mixes_stereo_to_mono(tmp_path):
    left, right = tone(440, 0.5, 22050), np.zeros(int(0.5 * 22050), np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 22050)
    wave = read_wav(tmp_path / "st.wav", 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 8000) <= 2  # 0.5 s at 16 kHz
    assert 0.2 < np.abs(wave).max() < 0.3  # the mean of a 0.5-amplitude tone and silence
    same = read_wav(tmp_path / "st.wav", 22050)
    np.testing.assert_allclose(same, (left + right) / 2, atol=1e-4)  # 16-bit PCM rounding


@pytest.mark.parametrize("content, words", [(None, "not found"), (b"", "unreadable"), (b"RIFFjunkjunk", "unreadable")])
def test_read_wav_bad_files_raise_naming_the_path(tmp_path, content, words):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=words) as err:
        read_wav(path)
    assert "bad.wav" in str(err.value) and "\n" not in str(err.value)


def test_read_wav_zero_samples_is_empty(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 8000)
    with pytest.raises(DataError, match="empty.wav: empty audio"):
        read_wav(tmp_path / "empty.wav")


def test_featurize_files_skip_or_fail(tmp_path, capsys):
    sf.write(tmp_path / "ok.wav", tone(300, 0.3, 8000), 8000)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    ext = FeatureExtractor(FeatureConfig(sample_rate=8000))
    paths = [tmp_path / "ok.wav", tmp_path / "bad.wav", tmp_path / "gone.wav"]
    with pytest.raises(DataError, match="m.csv line 3: .*bad.wav"):
        featurize_files(paths, ext, "fail", sources=["m.csv line 2", "m.csv line 3", "m.csv line 4"])
    feats, kept, durations = featurize_files(paths, ext, "skip")
    assert kept == [0] and len(feats) == 1 and durations == [pytest.approx(0.3)]
    err = capsys.readouterr().err
    assert "bad.wav" in err and "gone.wav" in err and err.count("\n") == 2


# ------------------------------------------------------------------------------------ manifests
def test_read_manifest_paths_relative_to_its_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    m = write_csv(
        tmp_path / "sub" / "m.csv", [["path", "text", "extra"], ["a.wav", " seven ", "x"], ["/abs/b.wav", "two", "y"]]
    )
    entries = read_manifest(m)
    assert entries[0].path == tmp_path / "sub" / "a.wav" and entries[0].text == "seven"
    assert entries[1].path == Path("/abs/b.wav") and entries[1].line == 3 and entries[1].source == "m.csv line 3"


@pytest.mark.parametrize(
    "rows, message",
    [
        ([["file", "text"], ["a.wav", "x"]], "column 'path' not found \\(columns: file, text\\)"),
        ([["path", "text"], ["a.wav", ""]], "line 2: empty field 'text'"),
        ([["path", "text"], ["a.wav", "x"], ["b.wav", "y", "z"]], "line 3: 3 fields, header has 2"),
        ([["path", "text"]], "no rows"),
        ([], "empty file"),
        ([["", ""], [" ", ""]], "empty manifest"),
        ([["path", "text", "path"], ["a.wav", "x", "b.wav"]], "line 1: column 'path' appears twice"),
    ],
)
def test_read_manifest_errors(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        read_manifest(write_csv(tmp_path / "m.csv", rows))


def test_parse_index_spec_and_pattern():
    assert parse_index_spec("0-4") == {0, 1, 2, 3, 4}
    assert parse_index_spec("0,2,5-6") == {0, 2, 5, 6}
    with pytest.raises(DataError, match="cannot parse"):
        parse_index_spec("a-b")
    m = pattern_regex("{text}_{speaker}_{index}.wav").fullmatch("7_jackson_32.wav")
    assert m["text"] == "7" and m["speaker"] == "jackson" and m["index"] == "32"
    with pytest.raises(DataError, match="must contain"):
        pattern_regex("{speaker}.wav")


def test_build_manifest_splits_by_index(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    for digit in "01":
        for idx in range(4):
            sf.write(rec / f"{digit}_amy_{idx}.wav", tone(300, 0.1, 8000), 8000)
    (rec / "README.txt").write_text("not audio")
    counts = build_manifest(rec, tmp_path / "out", test_index="0-1")
    assert counts == {"train": 4, "test": 4}
    test = read_manifest(tmp_path / "out" / "test.csv")
    assert sorted(e.path.name for e in test) == ["0_amy_0.wav", "0_amy_1.wav", "1_amy_0.wav", "1_amy_1.wav"]
    assert all(e.path.is_file() for e in test) and {e.text for e in test} == {"0", "1"}
    header = (tmp_path / "out" / "train.csv").read_text().splitlines()[0]
    assert header == "path,text,speaker,index"


# ------------------------------------------------------------------------------------ features
@pytest.fixture(scope="module")
def wave16k():
    rng = np.random.default_rng(0)
    return (tone(440, 0.4, 16000) + 0.05 * rng.standard_normal(6400)).astype(np.float32)


def test_mfcc_matches_librosa(wave16k):
    cfg = FeatureConfig(kind="mfcc", sample_rate=16000, n_mfcc=13, n_mels=40, deltas=2)
    feats = FeatureExtractor(cfg)(wave16k)  # (T, 39)
    mel = librosa.feature.melspectrogram(y=wave16k, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=13)  # (13, T)
    assert feats.shape == (ref.shape[1], 39) == (41, 39)
    np.testing.assert_allclose(feats[:, :13], ref.T, rtol=1e-4, atol=1e-3)
    d1 = librosa.feature.delta(ref, width=9, order=1, mode="nearest")
    np.testing.assert_allclose(feats[:, 13:26], d1.T, rtol=1e-4, atol=1e-3)


def test_fbank_matches_librosa(wave16k):
    cfg = FeatureConfig(kind="fbank", sample_rate=16000, n_mels=40, deltas=0)
    feats = FeatureExtractor(cfg)(wave16k)  # (T, 40)
    mel = librosa.feature.melspectrogram(y=wave16k, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    np.testing.assert_allclose(feats, librosa.power_to_db(mel, top_db=None).T, rtol=1e-4, atol=1e-3)
    assert cfg.dim == 40 and FeatureConfig(kind="mfcc", n_mfcc=13, deltas=2).dim == 39


def test_norm_global_and_utterance_roundtrip():
    rng = np.random.default_rng(1)
    feats = [rng.normal(5, 3, size=(n, 4)).astype(np.float32) for n in (10, 20, 30)]
    norm = FeatureNorm("global").fit(feats)
    z = np.concatenate([norm(f) for f in feats])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    again = FeatureNorm.from_json(json.loads(json.dumps(norm.to_json())))
    np.testing.assert_array_equal(again(feats[0]), norm(feats[0]))
    u = FeatureNorm("utterance")(feats[1])
    np.testing.assert_allclose(u.mean(0), 0, atol=1e-5)
    assert FeatureNorm("none")(feats[2]) is feats[2]


def test_spec_augment_masks_inside_lengths_only():
    x = torch.ones(3, 50, 20)
    lengths = torch.tensor([50, 30, 10])
    cfg = SpecAugmentConfig(time_masks=2, time_width=10, freq_masks=2, freq_width=5, value=0.0)
    y = spec_augment(x, lengths, cfg, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.all(x == 1)  # input untouched
    assert (y == 0).any()
    again = spec_augment(x, lengths, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)  # same generator state -> same masks
    for b, n in enumerate(lengths.tolist()):
        masked_frames = (y[b] == 0).all(dim=1).nonzero().flatten()
        assert masked_frames.numel() <= 2 * min(10, int(0.2 * n))
        assert (masked_frames < n).all()
        masked_bands = (y[b] == 0).all(dim=0).sum().item()
        assert masked_bands <= 10


@pytest.mark.real_data("fsdd")
def test_fsdd_files_read_at_8k(tmp_path):
    files = sorted(FSDD.glob("7_jackson_*.wav"))[:3]
    ext = FeatureExtractor(FeatureConfig(sample_rate=8000))
    feats, kept, durations = featurize_files(files, ext)
    assert kept == [0, 1, 2] and all(0.1 < d < 2 for d in durations)
    assert all(f.shape[1] == 39 and np.isfinite(f).all() for f in feats)
