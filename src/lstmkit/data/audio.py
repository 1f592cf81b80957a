"""Audio input for speech tasks: WAV reading, features, normalisation, SpecAugment (manifests:
:mod:`lstmkit.data.manifest`).

Data flow::

    manifest.csv (path,text) ──► read_manifest ──► [ManifestEntry]
    WAV ──► read_wav (mono mix, resample to ``sample_rate``) ──► wave (N,) float32
    wave ──► FeatureExtractor (librosa STFT + mel filterbank [+ DCT] [+ deltas]) ──► (T, F) float32
    (T, F) ──► FeatureNorm (global or per-utterance mean/std, JSON) ──► normalised (T, F)
    batch (B, T, F) ──► spec_augment (training only: time and frequency masks)

Frames are ``win_ms`` long every ``hop_ms`` (25 ms / 10 ms by default), so T ≈ duration / hop.
Bad input raises :class:`lstmkit.errors.DataError` with a one-line message naming the file (and
line for manifests).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from lstmkit.errors import DataError, warn

if TYPE_CHECKING:  # SpecAugment (training only) imports torch when it runs: reading and features need numpy only
    import torch

FeatureKind = Literal["mfcc", "fbank"]
NormMode = Literal["global", "utterance", "none"]
OnError = Literal["skip", "fail"]


# --------------------------------------------------------------------------------------------
# WAV reading
# --------------------------------------------------------------------------------------------
MIN_SAMPLE_RATE = 1000  # Hz: a file recorded below it is not speech audio (the lowest --sample-rate)
MAX_AMPLITUDE = 100.0  # float audio lies within [-1, 1]; far beyond it integer samples were not scaled


def audio_info(path: str | Path) -> tuple[int, int]:
    """``(sample rate, frames)`` of an audio file from its header (cheap: no samples are read).

    Raises DataError for a missing file, a folder, an unreadable or empty file, or a sample rate
    below 1000 Hz.
    """
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise DataError(f"{path}: unreadable audio file ({_first_line(exc)})") from None
    if info.frames <= 0:
        raise DataError(f"{path}: empty audio file (0 samples)")
    if info.samplerate < MIN_SAMPLE_RATE:
        raise DataError(
            f"{path}: sample rate {info.samplerate} Hz is below {MIN_SAMPLE_RATE} Hz, not speech audio "
            "(record or resample it at 8000 Hz or more)"
        )
    return int(info.samplerate), int(info.frames)


def check_wave(wave: np.ndarray, where: str) -> None:
    """Refuse samples a feature extractor cannot use: NaN or infinite ones, or magnitudes far beyond
    float audio's [-1, 1] (integer samples that were not scaled)."""
    if not np.all(np.isfinite(wave)):
        raise DataError(f"{where}: audio contains NaN or infinite samples")
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    if peak > MAX_AMPLITUDE:
        raise DataError(
            f"{where}: samples reach {peak:.3g}, but float audio lies within [-1, 1] "
            "(scale integer samples, e.g. x / 32768 for 16-bit)"
        )


def read_audio(
    path: str | Path, sample_rate: int = 16000, max_seconds: float | None = None
) -> tuple[np.ndarray, float]:
    """``(wave, seconds)``: the file as mono float32 samples in [-1, 1] at ``sample_rate`` Hz (N,), cut to
    its first ``max_seconds`` (only those are read), and the file's full duration in seconds.

    Channels are averaged (mono mix); other sample rates are resampled with librosa (soxr). Raises
    DataError for a missing, unreadable or empty file, a sample rate below 1000 Hz, NaN or infinite
    samples, or samples far beyond [-1, 1].
    """
    import soundfile as sf

    path = Path(path)
    sr, frames = audio_info(path)
    limit = frames
    if max_seconds is not None and frames > max_seconds * sr:
        limit = max(1, int(max_seconds * sr))
    try:
        data, sr = sf.read(str(path), frames=limit, dtype="float32", always_2d=True)  # (N, channels)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise DataError(f"{path}: unreadable audio file ({_first_line(exc)})") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: empty audio file (0 samples)")
    wave = data.mean(axis=1)  # (N,) mono mix
    check_wave(wave, str(path))
    if sr != sample_rate:
        import librosa

        wave = librosa.resample(wave, orig_sr=sr, target_sr=sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32), frames / sr


def read_wav(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Read an audio file as mono float32 samples in [-1, 1] at ``sample_rate`` Hz: :func:`read_audio`
    without a length limit. Returns shape (N,)."""
    return read_audio(path, sample_rate)[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------
@dataclass
class FeatureConfig:
    """How a wave becomes a (T, F) feature matrix.

    ``mfcc``: F = n_mfcc * (1 + deltas); ``fbank`` (log-mel): F = n_mels * (1 + deltas),
    where deltas ∈ {0, 1, 2} adds first / second order time derivatives.
    """

    kind: FeatureKind = "mfcc"
    sample_rate: int = 16000
    n_mfcc: int = 13
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    deltas: int = 2
    fmin: float = 0.0
    fmax: float | None = None  # None = sample_rate / 2

    @property
    def dim(self) -> int:
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (1 + self.deltas)

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))


class FeatureExtractor:
    """Log-mel / MFCC features with librosa; the mel filterbank is built once.

    log-mel[m, t] = 10 log10(max(Σ_k mel[m, k] |STFT[k, t]|², 1e-10))                (n_mels, T)
    mfcc = DCT-II(log-mel, ortho)[:n_mfcc]  (the same as ``librosa.feature.mfcc``)     (n_mfcc, T)
    deltas: ``librosa.feature.delta`` of order 1 and 2 (width 9, edge mode 'nearest').
    """

    def __init__(self, cfg: FeatureConfig):
        import librosa

        if cfg.kind not in ("mfcc", "fbank"):
            raise DataError(f"--features: unknown kind '{cfg.kind}' (mfcc or fbank)")
        self.cfg = cfg
        self.win_length = int(round(cfg.sample_rate * cfg.win_ms / 1000))
        self.n_fft = 1 << (self.win_length - 1).bit_length()  # next power of two >= window
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.mel_basis = librosa.filters.mel(
                sr=cfg.sample_rate, n_fft=self.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
            )  # (n_mels, n_fft // 2 + 1)
        if any("Empty filters" in str(w.message) for w in caught):
            warn(
                f"--n-mels {cfg.n_mels}: some mel bands are empty for a {cfg.win_ms:g} ms window at {cfg.sample_rate} Hz "
                "(their features are constant): use fewer bands, a longer --win-ms or a wider --fmin/--fmax"
            )

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """wave (N,) float32 at cfg.sample_rate -> features (T, F) float32, T = 1 + N // hop."""
        import librosa
        import scipy.fft

        with warnings.catch_warnings():  # a clip shorter than one window is zero-padded: no need to say so
            warnings.filterwarnings("ignore", message="n_fft=.* is too large")
            spec = librosa.stft(
                wave, n_fft=self.n_fft, hop_length=self.cfg.hop_length, win_length=self.win_length
            )  # (n_fft/2+1, T) complex
        power = np.abs(spec) ** 2
        logmel = librosa.power_to_db(self.mel_basis @ power, top_db=None)  # (n_mels, T)
        if self.cfg.kind == "mfcc":
            base = scipy.fft.dct(logmel, axis=0, type=2, norm="ortho")[: self.cfg.n_mfcc]
        else:
            base = logmel
        parts = [base]
        for order in range(1, self.cfg.deltas + 1):
            parts.append(librosa.feature.delta(base, width=9, order=order, mode="nearest"))
        return np.ascontiguousarray(np.concatenate(parts, axis=0).T, dtype=np.float32)  # (T, F)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------
@dataclass
class FeatureNorm:
    """Mean/variance normalisation of (T, F) features: x̂ = (x - mean) / max(std, 1e-5).

    ``global``: mean/std (F,) fitted over every frame of the training set and stored as JSON.
    ``utterance``: each utterance uses its own frame mean/std. ``none``: identity.
    """

    mode: NormMode = "global"
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def fit(self, feats: Sequence[np.ndarray]) -> FeatureNorm:
        if self.mode == "global":
            frames = np.concatenate(list(feats), axis=0).astype(np.float64)  # (ΣT, F)
            self.mean = frames.mean(axis=0).tolist()
            self.std = frames.std(axis=0).tolist()
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.mode == "none":
            return x
        if self.mode == "utterance":
            mean, std = x.mean(axis=0), x.std(axis=0)  # (F,)
        else:
            if len(self.mean) != x.shape[1]:
                raise DataError(f"feature norm: fitted for {len(self.mean)} dims, got {x.shape[1]}")
            mean, std = np.asarray(self.mean), np.asarray(self.std)
        return ((x - mean) / np.maximum(std, 1e-5)).astype(np.float32)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> FeatureNorm:
        return cls(mode=d["mode"], mean=list(d.get("mean", [])), std=list(d.get("std", [])))


# --------------------------------------------------------------------------------------------
# Loading many files
# --------------------------------------------------------------------------------------------
def featurize_files(
    paths: Sequence[Path],
    extractor: FeatureExtractor,
    on_error: OnError = "fail",
    sources: Sequence[str] | None = None,
    max_seconds: float | None = None,
    warn_long: bool = True,
) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Read and featurise each file; returns (features (T, F) list, kept indices, durations s).

    With ``on_error='skip'`` unreadable/missing/empty files are skipped with a one-line warning;
    with ``'fail'`` the first one raises DataError (prefixed by its manifest line if given). Files
    longer than ``max_seconds`` are cut to their first ``max_seconds`` (durations are of what was
    read), with one warning giving the count (``warn_long=False``: silently, when the same files were
    already warned about).
    """
    feats, kept, durations = [], [], []
    cut: list[tuple[float, str]] = []
    sr = extractor.cfg.sample_rate
    for i, p in enumerate(paths):
        try:
            wave, seconds = read_audio(p, sr, max_seconds)
        except DataError as exc:
            msg = f"{sources[i]}: {exc}" if sources else str(exc)
            if on_error == "fail":
                raise DataError(msg) from None
            warn(f"{msg} (skipped)")
            continue
        if max_seconds is not None and seconds > max_seconds:
            cut.append((seconds, sources[i] if sources else str(p)))
        feats.append(extractor(wave))
        kept.append(i)
        durations.append(len(wave) / sr)
    if cut and warn_long:
        warn_cut(len(cut), max(cut), max_seconds)
    if not feats:
        raise DataError(f"no readable audio files (all {len(paths)} were skipped)")
    return feats, kept, durations


def warn_cut(count: int, longest: tuple[float, str], max_seconds: float | None) -> None:
    """The one warning about clips cut to ``--max-seconds``."""
    warn(
        f"{count} audio clip(s) longer than --max-seconds {max_seconds:g} are cut to their first {max_seconds:g} s "
        f"(the longest: {longest[1]}, {longest[0]:.1f} s)"
    )


# --------------------------------------------------------------------------------------------
# SpecAugment
# --------------------------------------------------------------------------------------------
@dataclass
class SpecAugmentConfig:
    """SpecAugment-style masking (Park et al. 2019), without time warping.

    ``time_masks`` masks of width ~ U[0, min(time_width, time_ratio * T_b)] frames and
    ``freq_masks`` masks of width ~ U[0, freq_width] feature dims are set to ``value``
    (0 = the mean after normalisation).
    """

    time_masks: int = 2
    time_width: int = 10
    time_ratio: float = 0.2
    freq_masks: int = 2
    freq_width: int = 8
    value: float = 0.0


def spec_augment(
    x: torch.Tensor,
    lengths: torch.Tensor,
    cfg: SpecAugmentConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mask random time spans and feature bands of a padded batch; returns a new tensor.

    x (B, T, F), lengths (B,) real frames per utterance; masks stay inside each utterance.
    """
    import torch

    B, T, F = x.shape
    out = x.clone()
    t_idx = torch.arange(T).view(1, T)  # (1, T)
    f_idx = torch.arange(F).view(1, F)  # (1, F)

    def rand(n: int) -> torch.Tensor:
        return torch.rand(B, n, generator=generator)  # (B, n) in [0, 1)

    lens = lengths.to("cpu", torch.float32).view(B, 1)  # (B, 1)
    keep = torch.ones(B, T, F, dtype=torch.bool)
    if cfg.time_masks > 0 and cfg.time_width > 0:
        max_w = torch.clamp(torch.minimum(lens * cfg.time_ratio, torch.tensor(float(cfg.time_width))), min=0)
        width = (rand(cfg.time_masks) * (max_w + 1)).floor()  # (B, n)
        start = (rand(cfg.time_masks) * (lens - width + 1).clamp(min=1)).floor()  # (B, n)
        hit = (t_idx.unsqueeze(1) >= start.unsqueeze(2)) & (t_idx.unsqueeze(1) < (start + width).unsqueeze(2))
        keep &= ~hit.any(dim=1).unsqueeze(2)  # (B, T, 1)
    if cfg.freq_masks > 0 and cfg.freq_width > 0:
        width = (rand(cfg.freq_masks) * (min(cfg.freq_width, F) + 1)).floor()  # (B, n)
        start = (rand(cfg.freq_masks) * (F - width + 1)).floor()  # (B, n)
        hit = (f_idx.unsqueeze(1) >= start.unsqueeze(2)) & (f_idx.unsqueeze(1) < (start + width).unsqueeze(2))
        keep &= ~hit.any(dim=1).unsqueeze(1)  # (B, 1, F)
    out[~keep.to(x.device)] = cfg.value
    return out
