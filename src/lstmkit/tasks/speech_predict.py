"""The speech predictor: audio file / folder / manifest → labels or transcripts, and evaluation.

p = lstmkit.load("runs/fsdd")           # or lstmkit.tasks.speech.load_predictor
p.predict_file("7_jackson_0.wav")       # "7" (classify) or "seven" (ctc)
p.predict("test.csv" | "folder/" | "x.wav")   # [(path, text), ...]
p.evaluate("test.csv")                  # accuracy | wer, cer; rtf = compute seconds / audio seconds
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lstmkit.data.audio import (
    FeatureExtractor,
    FeatureNorm,
    OnError,
    featurize_files,
    list_audio,
    read_manifest,
    read_wav,
    warn,
)
from lstmkit.data.batching import pad_sequences
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError

BATCH = 32


class SpeechPredictor:
    """Runs a trained :class:`~lstmkit.tasks.speech_model.SpeechNet` on audio (CPU, eval mode)."""

    def __init__(self, cfg, net, norm: FeatureNorm, labels: Vocab):
        self.cfg = cfg  # SpeechConfig
        self.net = net.eval()
        self.norm = norm
        self.labels = labels
        self.extractor = FeatureExtractor(cfg.features)

    @property
    def mode(self) -> str:
        return self.cfg.mode

    # ------------------------------------------------------------------------------- core
    def features(self, wave: np.ndarray) -> np.ndarray:
        """wave (N,) at the model's sample rate → normalised features (T, F)."""
        return self.norm(self.extractor(np.asarray(wave, dtype=np.float32)))

    @torch.no_grad()
    def predict_features(
        self, feats: Sequence[np.ndarray], decoder: str | None = None, beam_width: int | None = None
    ) -> list[str]:
        """Raw (T, F) features (not yet normalised) → one text per utterance."""
        from lstmkit.tasks.speech import decode_outputs

        decoder = decoder or self.cfg.decoder
        beam_width = beam_width or self.cfg.beam_width
        order = sorted(range(len(feats)), key=lambda i: -feats[i].shape[0])  # less padding
        texts: list[str] = [""] * len(feats)
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            x, lengths = pad_sequences([torch.from_numpy(self.norm(feats[i])) for i in idx])  # (B, T, F)
            out, out_lengths = self.net(x, lengths)
            for i, t in zip(idx, decode_outputs(self.cfg.mode, out, out_lengths, self.labels, decoder, beam_width)):
                texts[i] = t
        return texts

    def predict_wave(self, wave: np.ndarray, sample_rate: int | None = None, **kw) -> str:
        """One wave (N,) → text; resampled first if ``sample_rate`` differs from the model's."""
        wave = np.asarray(wave, dtype=np.float32)
        if sample_rate is not None and sample_rate != self.cfg.features.sample_rate:
            import librosa

            wave = librosa.resample(wave, orig_sr=sample_rate, target_sr=self.cfg.features.sample_rate)
        if wave.size == 0:
            raise DataError("predict_wave: empty wave")
        return self.predict_features([self.extractor(wave)], **kw)[0]

    def predict_file(self, path: str | Path, **kw) -> str:
        return self.predict_wave(read_wav(path, self.cfg.features.sample_rate), **kw)

    # ------------------------------------------------------------------------------- many files
    def resolve(self, target: str | Path) -> tuple[list[Path], list[str] | None, list[str] | None]:
        """A manifest (.csv), a folder or one audio file → (paths, reference texts or None, sources)."""
        target = Path(target)
        if target.is_dir():
            return list_audio(target), None, None
        if target.suffix.lower() == ".csv":
            entries = read_manifest(target, require_text=False)
            texts = [e.text for e in entries]
            return [e.path for e in entries], (texts if all(texts) else None), [e.source for e in entries]
        if not target.exists():
            raise DataError(f"{target}: not found (expected a manifest .csv, a folder or an audio file)")
        return [target], None, None

    def predict(
        self, target: str | Path, on_error: OnError = "fail", decoder: str | None = None, beam_width: int | None = None
    ) -> list[tuple[Path, str]]:
        """Predict for every file of a manifest, a folder or one file; unreadable ones fail or are skipped."""
        paths, _, sources = self.resolve(target)
        feats, kept, _ = featurize_files(paths, self.extractor, on_error, sources)
        texts = self.predict_features(feats, decoder, beam_width)
        return [(paths[i], t) for i, t in zip(kept, texts)]

    def evaluate(
        self,
        manifest: str | Path,
        on_error: OnError = "fail",
        decoder: str | None = None,
        beam_width: int | None = None,
    ) -> dict:
        """Score a ``path,text`` manifest: accuracy (classify) or WER/CER (ctc) + real-time factor.

        ``rtf`` = (reading + features + network + decoding seconds) / audio seconds.
        """
        from lstmkit.tasks.speech import normalize_text, score

        entries = read_manifest(manifest)
        refs_all = [normalize_text(e.text) for e in entries]
        self._warn_unknown(entries, refs_all)
        t0 = time.perf_counter()
        feats, kept, durations = featurize_files(
            [e.path for e in entries], self.extractor, on_error, [e.source for e in entries]
        )
        hyps = self.predict_features(feats, decoder, beam_width)
        seconds = time.perf_counter() - t0
        metrics = score(self.cfg.mode, [refs_all[i] for i in kept], hyps)
        audio = float(sum(durations))
        metrics.update(
            {
                "n": len(kept),
                "skipped": len(entries) - len(kept),
                "audio_seconds": audio,
                "rtf": seconds / audio if audio > 0 else float("nan"),
            }
        )
        return metrics

    def _warn_unknown(self, entries, refs: list[str]) -> None:
        """One warning line for references the model can never output."""
        if self.cfg.mode == "classify":
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
    @torch.no_grad()
    def trace_gates(self, sample) -> list:
        """Gate activations of every LSTM layer/direction for one utterance (for ``lstmkit inspect``).

        ``sample``: an audio file path or a wave (N,) at the model's sample rate. Returns a list of
        ``Gates`` (i, f, g, o, c), each (1, T', H), index layer * D + d.
        """
        if isinstance(sample, (str, Path)):
            wave = read_wav(sample, self.cfg.features.sample_rate)
        else:
            wave = np.asarray(sample, dtype=np.float32)
        x = torch.from_numpy(self.features(wave)).unsqueeze(0)  # (1, T, F)
        _, _, gates = self.net.encode(x, torch.tensor([x.shape[1]]), return_gates=True)
        return gates

    @property
    def num_directions(self) -> int:
        return 2 if self.cfg.bidirectional else 1

    def inspect_sample(self, data: str | Path | None = None, index: int = 0) -> np.ndarray:
        """The wave to trace: file ``index`` of a manifest / folder / audio file, or (no ``data``)
        one second of a 300 → 3000 Hz chirp at the model's sample rate."""
        sr = self.cfg.features.sample_rate
        if data is None:
            t = np.arange(sr, dtype=np.float64) / sr
            return (0.5 * np.sin(2 * np.pi * (300 * t + 1350 * t**2))).astype(np.float32)  # (N,)
        paths, _, _ = self.resolve(data)
        if not 0 <= index < len(paths):
            raise DataError(f"{data}: --index {index} out of range ({len(paths)} files)")
        return read_wav(paths[index], sr)

    def step_labels(self, sample) -> list[str]:
        """Time (s) at the start of each LSTM step of ``sample`` (a wave): T' labels."""
        wave = sample if not isinstance(sample, (str, Path)) else read_wav(sample, self.cfg.features.sample_rate)
        frames = self.extractor(np.asarray(wave, dtype=np.float32)).shape[0]
        k, hop = max(1, self.cfg.subsample), self.cfg.features.hop_ms / 1000
        return [f"{s * k * hop:.2f}" for s in range(-(-frames // k))]
