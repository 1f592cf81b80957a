"""The speech predictor: audio → labels or transcripts, evaluation with the real-time factor, gates.

::

    p = lstmkit.load("runs/fsdd")
    p.predict("7_jackson_0.wav")                # [SpeechOutput(path="7_jackson_0.wav", text="7", error=None)]
    p.predict(Path("test.csv") | Path("dir/"))  # one output per file of a manifest / folder, in order
    p.predict(wave)                             # a numpy array: one waveform at the model's sample rate
    p.evaluate("test.csv")                      # accuracy | wer, cer, sentence_accuracy; n, rtf, ...
    p.stream().step(frames)                     # unidirectional CTC: posteriors + transcript so far

Torch is imported only where the network runs: :meth:`SpeechPredictor.outputs` (whole utterances),
:meth:`SpeechPredictor.stream_step` (streaming chunks) and the gates for inspect. The runtime
(:mod:`lstmkit.runtime.speech`) overrides the first two to run ONNX graphs and shares everything else,
reading audio, features and decoding included.
"""

from __future__ import annotations

import csv
import io
import numbers
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstmkit.data.arrays import pad_arrays
from lstmkit.data.audio import (
    MIN_SAMPLE_RATE,
    FeatureExtractor,
    FeatureNorm,
    check_wave,
    featurize_files,
    read_audio,
    warn,
    warn_cut,
)
from lstmkit.data.manifest import ManifestEntry
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks.base import Predictor
from lstmkit.tasks.speech.config import SPEC, SpeechConfig, SpeechEvaluate, SpeechPredict
from lstmkit.tasks.speech.data import BLANK, AudioInput, feature_config, predict_inputs, read_entries
from lstmkit.tasks.speech.decode import decode_arrays, normalize_text
from lstmkit.tasks.speech.metrics import score

if TYPE_CHECKING:  # torch is imported where the network runs: the runtime subclass runs ONNX instead
    from lstmkit.tasks.speech.model import SpeechNet
    from lstmkit.tasks.speech.stream import SpeechStream

BATCH = 32


class SpeechOutput(NamedTuple):
    """One prediction: the input's ``path`` (as given; none for a waveform), the label or
    transcript ``text`` (none when the input was empty or skipped) and the ``error`` that skipped it."""

    path: str | None
    text: str | None
    error: str | None = None


class SpeechPredictor(Predictor[SpeechConfig]):
    """Runs a trained :class:`~lstmkit.tasks.speech.model.SpeechNet` on audio (CPU, eval mode)."""

    spec = SPEC
    model: SpeechNet
    #: whether inputs over ``--max-seconds`` get their warning (off while training reports on data it warned about)
    warn_limits = True

    def setup(self) -> None:
        cfg = self.config
        if int(self.dims.get("input_size", -1)) != cfg.audio.dim:
            raise ModelFolderError(
                f"config.json: dims.input_size {self.dims.get('input_size')} does not match the "
                f"audio settings ({cfg.audio.dim} features per frame)"
            )
        self.extractor = FeatureExtractor(feature_config(cfg.audio))
        self.norm = _norm_from_json(self.transforms.get("norm"), cfg)
        self.labels = _labels_from_json(self.transforms.get("labels"), cfg.mode, int(self.dims["num_outputs"]))

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def sample_rate(self) -> int:
        return self.config.audio.sample_rate

    # ------------------------------------------------------------------------------- core
    def features(self, wave: np.ndarray) -> np.ndarray:
        """wave (N,) at the model's sample rate → normalised features (T, F)."""
        return self.norm(self.extractor(self._wave(wave, 1)[0]))

    def _options(self, options: dict[str, Any]) -> SpeechPredict:
        """Keyword options checked as predict's declared options (``decoder``, ``beam_width``, ...)."""
        return SpeechPredict().build({k: v for k, v in options.items() if v is not None})

    def predict_features(
        self, feats: np.ndarray | list[np.ndarray], decoder: str | None = None, beam_width: int | None = None
    ) -> list[str]:
        """Raw (T, F) features (not yet normalised; one array is one utterance) → one text per utterance.
        ``decoder`` and ``beam_width`` are checked as predict's options."""
        opts = self._options({"decoder": decoder, "beam_width": beam_width})
        if isinstance(feats, np.ndarray):
            feats = [feats]
        if not isinstance(feats, (list, tuple)):
            raise DataError(f"expected a (T, F) feature array or a list of them, got {type(feats).__name__}")
        for n, f in enumerate(feats, start=1):
            self._check_features(f, n)
        return self._decode(list(feats), opts)

    def _check_features(self, f: Any, n: int) -> None:
        dim = self.config.audio.dim
        if not isinstance(f, np.ndarray) or f.ndim != 2:
            shape = f"shape {tuple(f.shape)}" if isinstance(f, np.ndarray) else type(f).__name__
            raise DataError(f"input {n}: expected a (T, {dim}) feature array, got {shape}")
        if f.shape[0] == 0 or f.shape[1] != dim:
            raise DataError(f"input {n}: expected (T >= 1, {dim}) features, got shape {tuple(f.shape)}")
        if not np.issubdtype(f.dtype, np.floating) or not np.all(np.isfinite(f)):
            raise DataError(f"input {n}: features must be finite floating-point numbers ({f.dtype})")

    def _decode(self, feats: list[np.ndarray], opts: SpeechEvaluate) -> list[str]:
        decoder = opts.decoder or self.config.decoder
        beam_width = opts.beam_width or self.config.beam_width
        order = sorted(range(len(feats)), key=lambda i: -feats[i].shape[0])  # less padding
        texts: list[str] = [""] * len(feats)
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            x, lengths = pad_arrays([self.norm(feats[i].astype(np.float32, copy=False)) for i in idx])  # (B, T, F)
            out, out_lengths = self.outputs(x, lengths)
            for i, t in zip(idx, decode_arrays(self.mode, out, out_lengths, self.labels, decoder, beam_width)):
                texts[i] = t
        return texts

    # ------------------------------------------------------------------------------- the network
    def outputs(self, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network: normalised features x (B, T, F) float32, lengths (B,) int64 → classify: logits
        (B, C) and lengths; ctc: log-probs (B, T', V) and lengths' (B,) after frame stacking."""
        import torch

        with torch.no_grad():
            out, out_lengths = self.model(torch.from_numpy(x), torch.from_numpy(lengths))
        return out.float().numpy(), out_lengths.numpy()

    def stream_step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One chunk of a unidirectional CTC network: stacked frames x (B, K, k·F) float32 and the LSTM
        state h, c (L, B, H) → log-probs (B, K, V) and the new h, c (L, B, H)."""
        import torch

        from lstmkit.tasks.speech.export import StepNet

        with torch.no_grad():
            lp, h1, c1 = StepNet(self.model).eval()(*(torch.from_numpy(a) for a in (x, h, c)))
        return lp.numpy(), h1.numpy(), c1.numpy()

    def stream(self, **options: Any) -> SpeechStream:
        """A :class:`~lstmkit.tasks.speech.stream.SpeechStream`: feature frames in, CTC posteriors and the
        greedy transcript so far out (unidirectional CTC models only; ``normalized=True``: frames already
        normalised with the model's norm.json, else raw as :meth:`predict_features` takes them)."""
        from lstmkit.tasks.speech.stream import SpeechStream

        return SpeechStream(self, **options)

    def predict_wave(self, wave: np.ndarray, sample_rate: int | None = None, **options: Any) -> str:
        """One wave (N,) → text; resampled first if ``sample_rate`` differs from the model's."""
        if sample_rate is not None and (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, numbers.Integral)
            or sample_rate < MIN_SAMPLE_RATE
        ):
            raise DataError(f"sample_rate: expected a whole number of Hz >= {MIN_SAMPLE_RATE}, got {sample_rate!r}")
        if not isinstance(wave, np.ndarray):
            raise DataError(f"expected a waveform (a 1-D numpy array), got {type(wave).__name__}")
        wave = self._wave(wave, 1)[0]
        if sample_rate is not None and sample_rate != self.sample_rate:
            import librosa

            wave = librosa.resample(wave, orig_sr=int(sample_rate), target_sr=self.sample_rate)
        out = self.predict([wave], **options)[0]
        assert out.text is not None
        return out.text

    def predict_file(self, path: str | os.PathLike[str], **options: Any) -> str:
        """The label / transcript of one audio file."""
        if not isinstance(path, (str, os.PathLike)):
            raise DataError(f"expected the path of one audio file, got {type(path).__name__}")
        out = self.predict(str(path), **options)[0]
        return out.text or ""

    # ------------------------------------------------------------------------------- predict
    def read(self, path: str, options: SpeechPredict) -> list[AudioInput]:
        return predict_inputs(path)

    def predict_items(self, items: list[Any], options: SpeechPredict) -> list[SpeechOutput]:
        """One :class:`SpeechOutput` per item (a path, an :class:`AudioInput` or a waveform), in order;
        unreadable, empty or missing audio raises, or with ``on_error="skip"`` is warned about and
        answered with ``error`` set. Clips over ``max_seconds`` are cut, with one warning."""
        outputs: list[SpeechOutput] = []
        feats, where = [], []
        limit = options.max_seconds or self.config.max_seconds
        cut: list[tuple[float, str]] = []
        for n, item in enumerate(items, 1):
            name = _name(item)
            if name is not None and not name.strip():
                outputs.append(SpeechOutput(name, None))  # an empty input (a blank line), an empty output
                continue
            try:
                wave, seconds = self._wave(item, n, limit)
                feats.append(self.extractor(wave))
            except DataError as e:
                if options.on_error == "fail":
                    raise
                warn(f"{e} (skipped)")
                outputs.append(SpeechOutput(name, None, str(e)))
                continue
            if seconds > limit:
                cut.append((seconds, name or f"input {n}"))
            where.append(len(outputs))
            outputs.append(SpeechOutput(name, None))
        if cut and self.warn_limits:
            warn_cut(len(cut), max(cut), limit)
        for i, text in zip(where, self._decode(feats, options)):
            outputs[i] = outputs[i]._replace(text=text)
        return outputs

    def _wave(self, item: Any, n: int, max_seconds: float | None = None) -> tuple[np.ndarray, float]:
        """The samples (N,) of one item at the model's sample rate, cut to ``max_seconds``, and its full
        duration in seconds; DataError names the input."""
        if isinstance(item, np.ndarray):
            if item.ndim != 1:
                raise DataError(f"input {n}: a waveform must be 1-D (N,), got shape {tuple(item.shape)}")
            if np.issubdtype(item.dtype, np.integer):
                raise DataError(
                    f"input {n}: integer samples ({item.dtype}): pass float samples in [-1, 1] "
                    "(e.g. x / 32768 for 16-bit)"
                )
            if not np.issubdtype(item.dtype, np.floating):
                raise DataError(f"input {n}: a waveform holds real float samples, got dtype {item.dtype}")
            if item.size == 0:
                raise DataError(f"input {n}: empty waveform (0 samples)")
            if not np.all(np.isfinite(item)):
                raise DataError(f"input {n}: waveform contains NaN or infinite samples")
            check_wave(item, f"input {n}")
            seconds = item.size / self.sample_rate
            if max_seconds is not None and seconds > max_seconds:
                item = item[: max(1, int(max_seconds * self.sample_rate))]
            return np.ascontiguousarray(item, dtype=np.float32), seconds
        if isinstance(item, AudioInput):
            try:
                return read_audio(item.path, self.sample_rate, max_seconds)
            except DataError as e:
                raise DataError(f"{item.source}: {e}" if item.source != str(item.path) else str(e)) from None
        if isinstance(item, (str, os.PathLike)):
            return read_audio(Path(item), self.sample_rate, max_seconds)
        raise DataError(f"input {n}: expected an audio file path or a waveform, got {type(item).__name__}")

    def format_outputs(self, items: list[Any], outputs: list[SpeechOutput], options: SpeechPredict) -> str:
        """CSV ``path,prediction`` (an empty prediction for a skipped input; the warning names it)."""
        buf = io.StringIO()
        rows = [[o.path or "", o.text or ""] for o in outputs]
        csv.writer(buf, lineterminator="\n").writerows([["path", "prediction"], *rows])
        return buf.getvalue()

    # ------------------------------------------------------------------------------- evaluate
    def evaluate_data(self, data: Any, options: SpeechEvaluate) -> dict[str, Any]:
        """Score a ``path,text`` manifest (or ``[(path, text), ...]``): accuracy (classify) or WER,
        CER and sentence accuracy (ctc), with ``n`` scored, ``skipped``, ``audio_seconds`` and the
        real-time factor ``rtf`` = (reading + features + network + decoding seconds) / audio seconds."""
        entries, _ = read_entries(data)
        refs = [normalize_text(e.text) for e in entries]
        self._warn_unknown(entries, refs)
        t0 = time.perf_counter()
        feats, kept, seconds = featurize_files(
            [e.path for e in entries],
            self.extractor,
            options.on_error,
            [e.source for e in entries],
            options.max_seconds or self.config.max_seconds,
            self.warn_limits,
        )
        hyps = self._decode(feats, options)
        elapsed = time.perf_counter() - t0
        metrics: dict[str, Any] = score(self.mode, [refs[i] for i in kept], hyps)
        audio = float(sum(seconds))
        metrics.update(
            {
                "n": len(kept),
                "skipped": len(entries) - len(kept),
                "audio_seconds": audio,
                "rtf": elapsed / audio if audio > 0 else float("nan"),
            }
        )
        return metrics

    def _warn_unknown(self, entries: list[ManifestEntry], refs: list[str]) -> None:
        """One warning line for references the model can never output."""
        if self.mode == "classify":
            bad = [(e, r) for e, r in zip(entries, refs) if r not in self.labels]
            what = "labels"
        else:
            bad = [(e, r) for e, r in zip(entries, refs) if any(c not in self.labels for c in r)]
            what = "characters outside the model's alphabet"
        if bad:
            warn(
                f"{bad[0][0].source}: {len(bad)} reference(s) with {what} the model never predicts "
                f"(first: '{bad[0][1]}')"
            )

    # ------------------------------------------------------------------------------- inspect
    def trace_gates(self, sample: Any) -> list[Any]:
        """Gate activations of every LSTM layer/direction for one utterance (for ``lstmkit inspect``).

        ``sample``: an audio file path or a wave (N,) at the model's sample rate. Returns a list of
        ``Gates`` (i, f, g, o, c), each (1, T', H), index layer * D + d.
        """
        import torch

        x = torch.from_numpy(self.norm(self.extractor(self._sample_wave(sample)))).unsqueeze(0)  # (1, T, F)
        net: Any = self.model
        with torch.no_grad():
            _, _, gates = net.encode(x, torch.tensor([x.shape[1]]), return_gates=True)
        return gates

    @property
    def num_directions(self) -> int:
        return self.config.lstm.directions

    def inspect_sample(self, data: str | None = None, index: int = 0) -> np.ndarray:
        """The wave to trace: input ``index`` of a manifest / folder / audio file, or (no ``data``)
        one second of a 300 → 3000 Hz chirp at the model's sample rate."""
        sr = self.sample_rate
        if data is None:
            t = np.arange(sr, dtype=np.float64) / sr
            return (0.5 * np.sin(2 * np.pi * (300 * t + 1350 * t**2))).astype(np.float32)  # (N,)
        inputs = predict_inputs(str(data))
        if not 0 <= index < len(inputs):
            raise DataError(f"{data}: --index {index} out of range ({len(inputs)} files)")
        return read_audio(inputs[index].path, sr, self.config.max_seconds)[0]

    def step_labels(self, sample: Any) -> list[str]:
        """Time (s) at the start of each LSTM step of ``sample``: T' labels."""
        frames = self.extractor(self._sample_wave(sample)).shape[0]
        k, hop = max(1, self.config.subsample), self.config.audio.hop_ms / 1000
        return [f"{s * k * hop:.2f}" for s in range(-(-frames // k))]

    def _sample_wave(self, sample: Any) -> np.ndarray:
        """One audio file or waveform, cut to the model's ``--max-seconds``."""
        return self._wave(sample, 1, self.config.max_seconds)[0]


def _name(item: Any) -> str | None:
    if isinstance(item, AudioInput):
        return item.name
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    return None


def _norm_from_json(d: Any, cfg: SpeechConfig) -> FeatureNorm:
    """norm.json → :class:`FeatureNorm`, checked against the audio settings."""
    try:
        norm = FeatureNorm.from_json(d)
        mean, std = [float(x) for x in norm.mean], [float(x) for x in norm.std]
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(f"norm.json: missing or malformed ({type(e).__name__}: {e})") from None
    if norm.mode != cfg.audio.norm:
        raise ModelFolderError(f"norm.json: mode {norm.mode!r}, config.json says {cfg.audio.norm!r}")
    if norm.mode == "global" and not len(mean) == len(std) == cfg.audio.dim:
        raise ModelFolderError(f"norm.json: {len(mean)} means and {len(std)} stds for {cfg.audio.dim} features")
    return FeatureNorm(norm.mode, mean, std)


def _labels_from_json(d: Any, mode: str, n: int) -> Vocab:
    """labels.json → the label set (classify) or the alphabet with the blank at id 0 (ctc)."""
    try:
        labels = Vocab.from_json(d)
    except ModelFolderError as e:
        raise ModelFolderError(f"labels.json: {e}") from None
    if len(labels) != n:
        raise ModelFolderError(f"labels.json: {len(labels)} labels, the model has {n} outputs")
    if mode == "ctc" and labels.specials != (BLANK,):
        raise ModelFolderError(f"labels.json: a CTC alphabet starts with {BLANK}, got specials {list(labels.specials)}")
    return labels
