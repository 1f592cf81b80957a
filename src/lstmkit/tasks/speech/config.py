"""Every setting of ``lstmkit speech``, declared once (torch-free: the command line reads it).

The feature and SpecAugment settings are sections of their own (``audio``, ``augment``); the task
turns them into :class:`lstmkit.data.audio.FeatureConfig` / ``SpecAugmentConfig`` when it runs
(:mod:`lstmkit.tasks.speech.data`), so this module never imports numpy or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lstmkit.config import Settings, section, setting
from lstmkit.tasks.settings import LSTMSettings, TaskSettings
from lstmkit.tasks.spec import Arg, Command, TaskSpec
from lstmkit.trainer.config import TrainConfig

Mode = Literal["classify", "ctc"]
FeatureKind = Literal["mfcc", "fbank"]
NormMode = Literal["global", "utterance", "none"]
Pooling = Literal["mean", "max", "meanmax", "last"]
Decoder = Literal["greedy", "beam"]
OnError = Literal["fail", "skip"]

#: validation metrics per mode, and whether larger is better (picks --monitor-mode)
METRICS: dict[str, dict[str, bool]] = {
    "classify": {"accuracy": True},
    "ctc": {"wer": False, "cer": False, "sentence_accuracy": True},
}


@dataclass
class AudioSettings(Settings):
    """How a WAV becomes a (T, F) feature matrix: mono mix, resampling, frames, MFCC or log-mel.

    F = n_mfcc · (1 + deltas) for ``mfcc``, n_mels · (1 + deltas) for ``fbank``; frames are
    ``win_ms`` long every ``hop_ms``, so T ≈ duration / hop.
    """

    title = "audio features"

    features: FeatureKind = setting("mfcc", help="mfcc: MFCCs (DCT of the log-mel bands); fbank: log-mel filterbanks")
    sample_rate: int = setting(
        16000, ge=1000, le=192000, help="every file is mixed to mono and resampled to this rate (Hz)"
    )
    n_mfcc: int = setting(13, ge=1, help="MFCC coefficients (--features mfcc)")
    n_mels: int = setting(40, ge=1, help="mel bands")
    deltas: int = setting(2, ge=0, le=2, help="append delta (1) and delta-delta (2) features")
    win_ms: float = setting(25.0, gt=0, le=1000, help="analysis window (ms)")
    hop_ms: float = setting(10.0, gt=0, le=1000, help="frame hop (ms)")
    fmin: float = setting(0.0, ge=0, help="lowest frequency of the mel filterbank (Hz)")
    fmax: float | None = setting(None, gt=0, help="highest frequency of the mel filterbank, Hz (none: sample rate / 2)")
    norm: NormMode = setting(
        "global",
        help="feature normalisation: global (train-set mean/std, saved as norm.json), per utterance, or none",
    )

    @property
    def dim(self) -> int:
        """F, feature values per frame."""
        return (self.n_mfcc if self.features == "mfcc" else self.n_mels) * (1 + self.deltas)

    @property
    def bins(self) -> int:
        """Frequency bins of the STFT: n_fft // 2 + 1, n_fft the power of two at or above the window."""
        window = max(1, round(self.sample_rate * self.win_ms / 1000))
        return (1 << (window - 1).bit_length()) // 2 + 1

    def check(self) -> None:
        if self.features == "mfcc" and self.n_mfcc > self.n_mels:
            raise self.error("n_mfcc", f"must be <= --n-mels ({self.n_mels})", self.n_mfcc)
        if round(self.sample_rate * self.hop_ms / 1000) < 1:
            raise self.error("hop_ms", f"must be at least one sample at {self.sample_rate} Hz", self.hop_ms)
        if round(self.sample_rate * self.win_ms / 1000) < 1:
            raise self.error("win_ms", f"must be at least one sample at {self.sample_rate} Hz", self.win_ms)
        if self.n_mels > self.bins:
            what = f"the frequency bins of a {self.win_ms:g} ms window at {self.sample_rate} Hz: a longer --win-ms"
            raise self.error("n_mels", f"must be <= {self.bins} ({what} gives more)", self.n_mels)
        nyquist = self.sample_rate / 2
        if self.fmax is not None and self.fmax > nyquist:
            raise self.error("fmax", f"must be <= half the sample rate ({nyquist:g} Hz)", self.fmax)
        if self.fmin >= (self.fmax if self.fmax is not None else nyquist):
            raise self.error("fmin", "must be below --fmax (or half the sample rate)", self.fmin)


@dataclass
class AugmentSettings(Settings):
    """SpecAugment-style masking of training batches (Park et al. 2019), without time warping:
    ``time_masks`` spans of U[0, min(time_width, time_ratio · T)] frames and ``freq_masks`` bands
    of U[0, freq_width] feature dims per utterance are set to ``mask_value``."""

    title = "SpecAugment"

    specaugment: bool = setting(False, help="SpecAugment time and frequency masking of training batches")
    time_masks: int = setting(2, ge=0, le=100, help="SpecAugment: time masks per utterance")
    time_width: int = setting(10, ge=0, help="SpecAugment: widest time mask (frames)")
    time_ratio: float = setting(0.2, ge=0, le=1, help="SpecAugment: widest time mask as a share of the utterance")
    freq_masks: int = setting(2, ge=0, le=100, help="SpecAugment: frequency masks per utterance")
    freq_width: int = setting(8, ge=0, help="SpecAugment: widest frequency mask (feature dims)")
    mask_value: float = setting(0.0, help="SpecAugment: value of masked cells (0 = the mean after normalisation)")


@dataclass
class SpeechConfig(TaskSettings):
    """A speech model: features → [SpecAugment] → k-frame stacking → (Bi)LSTM → softmax over
    labels (``classify``, one per clip) or CTC over characters (``ctc``, a transcript)."""

    title = "speech"

    mode: Mode = setting("classify", help="classify: one label per clip; ctc: character transcription with CTC")
    audio: AudioSettings = section(AudioSettings, help="audio features")
    subsample: int = setting(
        2, ge=1, le=32, help="stack this many frames into one LSTM step (CTC needs ⌈T/k⌉ >= transcript length)"
    )
    pooling: Pooling = setting(
        "meanmax", help="classify: how the LSTM outputs are pooled over time (padding never counts)"
    )
    augment: AugmentSettings = section(AugmentSettings, help="SpecAugment")
    decoder: Decoder = setting(
        "greedy", help="CTC decoding saved with the model: greedy or prefix beam search (evaluate/predict may override)"
    )
    beam_width: int = setting(8, ge=1, le=1000, help="CTC prefix beam width saved with the model")
    max_seconds: float = setting(
        60.0,
        gt=0,
        help="longest audio clip in seconds: a longer clip is cut to its first --max-seconds (only those are read), "
        "in training, evaluate and predict, with one warning giving the count",
    )
    valid_fraction: float = setting(0.1, ge=0, lt=1, help="share of --data held out for validation without --valid")
    on_error: OnError = setting(
        "fail", help="unreadable, empty or missing audio and unusable rows: stop (exit 2), or warn and skip them"
    )
    lstm: LSTMSettings = section(LSTMSettings, hidden_size=128, num_layers=2, bidirectional=True, dropout=0.1)
    train: TrainConfig = section(TrainConfig)

    def metric_names(self) -> tuple[str, ...]:
        return tuple(METRICS[self.mode])


@dataclass
class SpeechEvaluate(Settings):
    """Options of ``speech evaluate`` / ``Predictor.evaluate``."""

    title = "evaluate"

    decoder: Decoder | None = setting(None, help="CTC decoding (none: the model's, greedy unless trained otherwise)")
    beam_width: int | None = setting(None, ge=1, le=1000, help="CTC prefix beam width (none: the model's)")
    max_seconds: float | None = setting(
        None, gt=0, help="longest audio clip in seconds, longer ones are cut with a warning (none: the model's)"
    )
    on_error: OnError = setting("fail", help="unreadable, empty or missing audio: stop (exit 2), or warn and skip it")


@dataclass
class SpeechPredict(SpeechEvaluate):
    """Options of ``speech predict`` / ``Predictor.predict`` (a skipped input keeps its output row,
    with ``text`` none and ``error`` set)."""

    title = "predict"


@dataclass
class ManifestOptions(Settings):
    """Options of ``speech manifest``."""

    title = "manifest"

    pattern: str = setting(
        "{text}_{speaker}_{index}.wav",
        help="file-name pattern: {text} is the label, {index} a number used by --test-index, other {fields} "
        "become columns",
    )
    test_index: str | None = setting(
        "0-4", help="indices that go to test.csv, e.g. 0-4 or 0,2,5-7; none puts every file in train.csv"
    )


MANIFEST = Command(
    name="manifest",
    help="write train.csv / test.csv (path,text,...) from a folder of audio files whose names carry the label",
    run="lstmkit.tasks.speech.manifest:run",
    options=ManifestOptions,
    args=(
        Arg("data", "folder of audio files, searched recursively (e.g. the Free Spoken Digit Dataset)", required=True),
        Arg("out", "folder for train.csv and test.csv (paths in them are relative to it)", required=True),
    ),
    model=False,
)

SPEC = TaskSpec(
    name="speech",
    summary="speech recognition: MFCC / log-mel, (Bi)LSTM, softmax or CTC",
    config=SpeechConfig,
    evaluate=SpeechEvaluate,
    predict=SpeechPredict,
    data_help="a manifest CSV with columns path,text (paths relative to the manifest's folder)",
    predict_help="a manifest CSV (path column), a folder of audio files, one audio file, or - for paths on stdin",
    commands=(MANIFEST,),
    renamed={"--unidirectional": "--no-bidirectional"},
    description="Recognise short utterances: one label per clip (--mode classify) or a character transcript "
    "(--mode ctc). --monitor-mode follows --monitor (max for accuracies, min otherwise).",
)
