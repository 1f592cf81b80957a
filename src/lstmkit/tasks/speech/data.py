"""Manifests and audio -> examples: features, the label set / alphabet, targets, batches.

::

    manifest.csv (path,text) ──► read_entries ──► featurize (read_wav + FeatureExtractor) ──► raw (T, F)
        ──► build_labels (training rows) ──► encode_targets ──► FeatureNorm (fitted on the training rows)
        ──► Example(feats (T, F), target ids) ──► collate: SpeechBatch(feats (B, T, F), lengths (B,),
            targets (B, S), target_lengths (B,))

The settings (``lstmkit.tasks.speech.config``, torch-free) become the audio module's objects here:
:func:`feature_config` and :func:`augment_config`. Torch is imported only where tensors are made
(:func:`collate`, :func:`make_examples`): the predictor and the torch-free runtime read inputs here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstmkit.data.audio import (
    FeatureConfig,
    FeatureExtractor,
    FeatureNorm,
    SpecAugmentConfig,
    featurize_files,
    warn,
)
from lstmkit.data.files import read_lines, short
from lstmkit.data.manifest import ManifestEntry, list_audio, read_manifest
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError
from lstmkit.tasks.speech.config import AudioSettings, AugmentSettings, Mode, OnError
from lstmkit.tasks.speech.decode import normalize_text  # lives with the decoders (the runtime's too)

if TYPE_CHECKING:
    import torch

BLANK = "<blank>"


def feature_config(a: AudioSettings) -> FeatureConfig:
    """The audio module's :class:`FeatureConfig` of the ``audio`` settings."""
    return FeatureConfig(
        kind=a.features,
        sample_rate=a.sample_rate,
        n_mfcc=a.n_mfcc,
        n_mels=a.n_mels,
        win_ms=a.win_ms,
        hop_ms=a.hop_ms,
        deltas=a.deltas,
        fmin=a.fmin,
        fmax=a.fmax,
    )


def augment_config(a: AugmentSettings) -> SpecAugmentConfig:
    """The audio module's :class:`SpecAugmentConfig` of the ``augment`` settings."""
    return SpecAugmentConfig(
        time_masks=a.time_masks,
        time_width=a.time_width,
        time_ratio=a.time_ratio,
        freq_masks=a.freq_masks,
        freq_width=a.freq_width,
        value=a.mask_value,
    )


class SpeechBatch(NamedTuple):
    """A padded batch. feats (B, T, F); lengths (B,); targets (B, 1) class ids (classify) or
    (B, S) padded label ids (ctc); target_lengths (B,) (ctc; ones for classify)."""

    feats: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor


class Example(NamedTuple):
    feats: torch.Tensor  # (T, F) normalised
    target: list[int]  # [class id] or label ids


def collate(examples: Sequence[Example]) -> SpeechBatch:
    """list of examples → :class:`SpeechBatch` (zero padding)."""
    import torch

    from lstmkit.data.batching import pad_sequences

    feats, lengths = pad_sequences([e.feats for e in examples])  # (B, T, F), (B,)
    targets, target_lengths = pad_sequences([torch.tensor(e.target, dtype=torch.int64) for e in examples])  # (B, S)
    return SpeechBatch(feats, lengths, targets, target_lengths)


# ------------------------------------------------------------------------------------ labelled data
def read_entries(data: Any, what: str = "data") -> tuple[list[ManifestEntry], str]:
    """Labelled rows of a manifest (a path) or of in-memory ``[(path, text), ...]`` / entries; an item
    of another shape is a DataError naming it."""
    if isinstance(data, (str, os.PathLike)):
        return read_manifest(Path(data)), str(data)
    if isinstance(data, (bytes, Mapping)) or not isinstance(data, Sequence):
        raise DataError(
            f"{what}: expected a manifest CSV or a list of (audio path, text) pairs, got {type(data).__name__}"
        )
    entries = []
    for i, e in enumerate(data, start=1):
        if isinstance(e, ManifestEntry):
            entries.append(e)
            continue
        if not isinstance(e, (tuple, list)) or len(e) != 2:
            raise DataError(f"{what} item {i}: expected an (audio path, text) pair, got {short(e)}")
        path, text = e
        if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
            raise DataError(f"{what} item {i}: the audio path must be a non-empty str or Path, got {short(path)}")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{what} item {i}: the text must be a non-empty string, got {short(text)}")
        entries.append(ManifestEntry(Path(path), text.strip(), i, f"{what} item {i}", str(path)))
    if not entries:
        raise DataError(f"{what}: no examples")
    return entries, what


class Featurized(NamedTuple):
    """The readable rows of a manifest with their raw features."""

    entries: list[ManifestEntry]  # kept rows
    feats: list[np.ndarray]  # raw (T, F) per kept row
    texts: list[str]  # normalised transcripts / labels
    seconds: list[float]  # audio duration per kept row


def featurize(
    entries: Sequence[ManifestEntry], extractor: FeatureExtractor, on_error: OnError, max_seconds: float | None = None
) -> Featurized:
    """Read and featurise every row (features are computed once and kept in memory); clips longer than
    ``max_seconds`` are cut (one warning)."""
    feats, kept, seconds = featurize_files(
        [e.path for e in entries], extractor, on_error, [e.source for e in entries], max_seconds
    )
    rows = [entries[i] for i in kept]
    return Featurized(rows, feats, [normalize_text(e.text) for e in rows], seconds)


def build_labels(mode: Mode, texts: Sequence[str]) -> Vocab:
    """classify: the sorted label set; ctc: the sorted character set after the blank (id 0)."""
    if mode == "classify":
        return Vocab(sorted(set(texts)), specials=())
    return Vocab(sorted({c for t in texts for c in t}), specials=(BLANK,))


def target_problem(mode: Mode, labels: Vocab, text: str, frames: int, subsample: int) -> tuple[list[int], str, bool]:
    """``(ids, problem, unknown)``: the target ids of ``text``, else why the model cannot learn it;
    ``unknown`` when the problem is a label / character outside ``labels``."""
    if mode == "classify":
        if text not in labels:
            return [], f"label '{text}' does not occur in the training data", True
        return [labels.index(text)], "", False
    bad = sorted({c for c in text if c not in labels})
    if bad:
        return [], f"characters {bad} are not in the alphabet", True
    ids = labels.encode(text)
    need = len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))  # a repeat needs a blank between
    steps = -(-frames // subsample)
    if steps < max(1, need):
        return [], f"{steps} frames after --subsample {subsample} cannot carry {need} CTC labels", False
    return ids, "", False


def encode_targets(
    mode: Mode,
    labels: Vocab,
    data: Featurized,
    rows: Sequence[int],
    subsample: int,
    on_error: OnError,
    on_unknown: OnError | None = None,
) -> dict[int, list[int]]:
    """Targets of ``rows`` (indices into ``data``); rows the model cannot learn fail or are skipped.

    classify: a label outside ``labels``; ctc: a character outside the alphabet, or a clip too short
    for its transcript (CTC needs ⌈T/k⌉ >= length + repeated neighbours). ``on_unknown`` (default
    ``on_error``) applies to labels and characters outside ``labels``.
    """
    out: dict[int, list[int]] = {}
    for i in rows:
        ids, problem, unknown = target_problem(mode, labels, data.texts[i], data.feats[i].shape[0], subsample)
        if problem:
            policy = (on_unknown or on_error) if unknown else on_error
            if policy == "fail":
                raise DataError(f"{data.entries[i].source}: {problem}")
            warn(f"{data.entries[i].source}: {problem} (skipped)")
            continue
        out[i] = ids
    return out


def make_examples(data: Featurized, targets: dict[int, list[int]], norm: FeatureNorm) -> list[Example]:
    import torch

    return [Example(torch.from_numpy(norm(data.feats[i])), ids) for i, ids in targets.items()]


# ------------------------------------------------------------------------------------ predict inputs
class AudioInput(NamedTuple):
    """One predict input read from a file: the ``path`` to read, its ``name`` as the user wrote it
    (the manifest's ``path`` field, or the path under the folder given) and ``source`` for messages."""

    path: Path
    name: str
    source: str


def predict_inputs(target: str) -> list[AudioInput]:
    """A manifest (.csv, a ``path`` column), a folder, one audio file, or ``-`` (paths on stdin,
    one per line; blank lines are empty inputs) → the inputs, in order."""
    if target == "-":
        lines = read_lines("-", "audio file paths (one per line)")
        return [AudioInput(Path(s.strip()), s.strip(), f"stdin line {n}") for n, s in enumerate(lines, 1)]
    path = Path(target)
    if path.is_dir():
        return [AudioInput(p, str(p), str(p)) for p in list_audio(path)]
    if path.suffix.lower() == ".csv":
        return [AudioInput(e.path, e.given or str(e.path), e.source) for e in read_manifest(path, require_text=False)]
    if not path.exists():
        raise DataError(f"{target}: not found (expected a manifest .csv, a folder or an audio file)")
    return [AudioInput(path, target, target)]
