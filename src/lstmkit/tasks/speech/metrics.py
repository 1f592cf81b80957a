"""Speech metrics: accuracy (classify); WER, CER (jiwer) and sentence accuracy (ctc).

WER = (S + D + I) / N over words and CER the same over characters, with S, D, I the substitutions,
deletions and insertions of the minimum edit alignment and N the reference length, summed over the
corpus (jiwer). Sentence accuracy is the share of exact matches.
"""

from __future__ import annotations

from collections.abc import Sequence


def score(mode: str, refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """classify: ``{"accuracy"}``; ctc: ``{"wer", "cer", "sentence_accuracy"}``."""
    acc = sum(r == h for r, h in zip(refs, hyps)) / len(refs) if refs else 0.0
    if mode == "classify":
        return {"accuracy": float(acc)}
    import jiwer

    refs_, hyps_ = [r or "<empty>" for r in refs], [h or "" for h in hyps]
    return {
        "wer": float(jiwer.wer(refs_, hyps_)),
        "cer": float(jiwer.cer(refs_, hyps_)),
        "sentence_accuracy": float(acc),
    }
