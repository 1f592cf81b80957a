"""Corpus BLEU and chrF with sacrebleu, on detokenised text (sacrebleu tokenises itself: ``13a``)."""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF


def corpus_scores(
    hypotheses: list[str], references: list[str], lowercase: bool = False, signatures: bool = False
) -> dict:
    """{"bleu", "chrf"} (0-100) for line-aligned hypotheses and references; with ``signatures`` also
    sacrebleu's signature strings ("bleu_signature", "chrf_signature") and the BLEU details."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    out = {"bleu": round(b.score, 4), "chrf": round(c.score, 4)}
    if signatures:
        out.update(
            bleu_signature=str(bleu.get_signature()),
            chrf_signature=str(chrf.get_signature()),
            bleu_precisions=[round(p, 2) for p in b.precisions],
            brevity_penalty=round(b.bp, 4),
            hyp_len=b.sys_len,
            ref_len=b.ref_len,
        )
    return out
