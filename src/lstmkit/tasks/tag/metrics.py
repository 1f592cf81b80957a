"""Tagging metrics: token accuracy, and for chunk tags entity precision / recall / F1 (seqeval).

Token accuracy = correct tags / tokens. For chunk tags, entities are read with seqeval's default
(conlleval-compatible) rules; with TP the entities predicted with exactly their gold type and
boundaries: precision = TP / predicted, recall = TP / gold, F1 = 2 P R / (P + R), micro-averaged
over types and per type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqeval.metrics import classification_report


def tag_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str) -> dict[str, Any]:
    """``accuracy``, ``sentences``, ``tokens``; for chunk schemes (not ``none``) also ``precision``,
    ``recall``, ``f1`` (micro), ``entities`` (gold count) and ``per_type`` {type: precision, recall,
    f1, support}."""
    n = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    out: dict[str, Any] = {"accuracy": correct / max(1, n), "sentences": len(gold), "tokens": n}
    if scheme == "none":
        return out
    report = classification_report(
        [list(g) for g in gold], [list(p) for p in pred], output_dict=True, zero_division=0, digits=6
    )
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    out.update(
        precision=float(micro["precision"]),
        recall=float(micro["recall"]),
        f1=float(micro["f1-score"]),
        entities=int(micro["support"]),
    )
    out["per_type"] = {
        k: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for k, v in sorted(report.items())
        if not k.endswith(" avg")
    }
    return out


def summary(m: dict[str, Any]) -> str:
    """The text of ``tag evaluate``: entity scores per type, or token accuracy."""
    if "f1" in m:
        lines = [
            f"entity F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
            f"token accuracy {m['accuracy']:.4f}  ({m['entities']} entities, {m['sentences']} sentences)"
        ]
        for typ, v in m.get("per_type", {}).items():
            lines.append(
                f"  {typ:<10} F1 {v['f1']:.4f}  precision {v['precision']:.4f}  recall {v['recall']:.4f}  "
                f"support {v['support']}"
            )
        return "\n".join(lines)
    return f"token accuracy {m['accuracy']:.4f}  ({m['tokens']} tokens, {m['sentences']} sentences)"
