"""Decoding for the translation model: greedy and batched beam search.

Both work on a batch of B source sentences and stop each sentence at </s> or at its own length limit

    max_len_b = ceil(max_ratio * source_length_b) + 5        (tokens, </s> included)

Beam search keeps K live hypotheses per sentence in one (B*K)-row batch. At each step it takes the
2K best continuations of each sentence by total log-probability; those ending in </s> within the top K
become finished hypotheses, the best K others stay live. A sentence is done when it has K finished
hypotheses (or reaches its length limit, when its live ones are finished as they are). Finished
hypotheses are ranked by the length-normalised score

    score = log p(y | x) / |y| ** alpha         (|y| counts </s>; alpha = 0 gives the raw sum)

With K = 1 this is exactly greedy decoding. <pad> and <s> are never generated.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

from lstmkit.nn.attention import select_memory

# One options class for these decoders and their NumPy twins (the torch-free predictor builds it):
# beam K (1 = greedy), nbest (<= beam), alpha (length-normalisation power), max_ratio (output length
# limit per source token), bos_id / eos_id, banned (never generated: <pad>, <s>).
from lstmkit.runtime.decode import DecodeOptions, select_candidates
from lstmkit.tasks.translate.model import Seq2Seq

__all__ = ["DecodeOptions", "Hypothesis", "beam_decode", "decode", "greedy_decode", "max_lengths"]


class Hypothesis(NamedTuple):
    """One translation: ids (no <s>/</s>), normalised score, raw log-probability, attention (T', S)."""

    ids: list[int]
    score: float
    logprob: float
    attention: Tensor


def max_lengths(src_len: Tensor, max_ratio: float) -> list[int]:
    """Per-sentence output limits (tokens including </s>)."""
    return [math.ceil(max_ratio * int(n)) + 5 for n in src_len.tolist()]


def _log_probs(model: Seq2Seq, y: Tensor, state, memory, banned: tuple[int, ...]):
    logits, state, attn = model.decode_step(y, state, memory)  # (N, V), ..., (N, S)
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # bf16 / fp16 under autocast
    logp = torch.log_softmax(logits, dim=-1)
    logp[:, list(banned)] = -math.inf
    return logp, state, attn


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: Tensor, src_len: Tensor, opts: DecodeOptions) -> list[list[Hypothesis]]:
    """Arg-max decoding of a batch; returns one hypothesis list (of length 1) per sentence."""
    memory, state = model.encode(src, src_len)
    b = src.size(0)
    limits = max_lengths(src_len, opts.max_ratio)
    y = torch.full((b,), opts.bos_id, dtype=torch.long, device=src.device)
    ids: list[list[int]] = [[] for _ in range(b)]
    attns: list[list[Tensor]] = [[] for _ in range(b)]
    total = [0.0] * b
    done = [False] * b
    for t in range(max(limits)):
        logp, state, attn = _log_probs(model, y, state, memory, opts.banned)
        best, y = logp.max(dim=-1)  # (B,), (B,)
        for i, (tok, lp) in enumerate(zip(y.tolist(), best.tolist())):
            if done[i]:
                continue
            total[i] += lp
            attns[i].append(attn[i])
            if tok == opts.eos_id or t + 1 >= limits[i]:
                done[i] = True
            if tok != opts.eos_id:
                ids[i].append(tok)
        if all(done):
            break
    out = []
    for i in range(b):
        n = len(attns[i])
        a = torch.stack(attns[i])[:, : int(src_len[i])].float().cpu()  # (T', S_i)
        out.append([Hypothesis(ids[i], total[i] / (n**opts.alpha), total[i], a)])
    return out


class _Finished:
    """Finished hypotheses of one sentence, kept as (score, logprob, ids, attention)."""

    def __init__(self) -> None:
        self.items: list[Hypothesis] = []

    def add(self, ids: list[int], logprob: float, attn: Tensor, alpha: float) -> None:
        n = attn.size(0)
        self.items.append(Hypothesis(ids, logprob / (n**alpha), logprob, attn))

    def best(self, k: int) -> list[Hypothesis]:
        return sorted(self.items, key=lambda h: -h.score)[:k]


@torch.no_grad()
def beam_decode(model: Seq2Seq, src: Tensor, src_len: Tensor, opts: DecodeOptions) -> list[list[Hypothesis]]:
    """Batched beam search; returns up to ``opts.nbest`` hypotheses per sentence, best first."""
    k = opts.beam
    b, dev = src.size(0), src.device
    memory, state = model.encode(src, src_len)
    expand = torch.arange(b, device=dev).repeat_interleave(k)  # (B*K,) row b*K+j -> sentence b
    memory, state = select_memory(memory, expand), state.select(expand)
    scores = torch.full((b, k), -math.inf, device=dev, dtype=torch.float64)  # running sums in float64
    scores[:, 0] = 0.0  # only beam 0 is live at the start (B, K)
    seqs = torch.full((b * k, 1), opts.bos_id, dtype=torch.long, device=dev)  # (B*K, t+1)
    attn_hist = memory.mask.new_zeros((b * k, 0, src.size(1)), dtype=torch.float)  # (B*K, t, S)
    limits = max_lengths(src_len, opts.max_ratio)
    finished = [_Finished() for _ in range(b)]
    done = [False] * b
    lens = [int(n) for n in src_len]  # each sentence's source length, read once
    for t in range(max(limits)):
        logp, state, attn = _log_probs(model, seqs[:, -1], state, memory, opts.banned)  # (B*K, V)
        attn_hist = torch.cat([attn_hist, attn.float().unsqueeze(1)], dim=1)  # (B*K, t+1, S)
        total = (scores.view(-1, 1) + logp).view(b, -1)  # (B, K*V)
        cand_scores, cand = total.topk(2 * k, dim=-1)  # (B, 2K)
        origin, token = cand // logp.size(-1), cand % logp.size(-1)  # (B, 2K) beam in sentence, token id
        rows, new_scores, new_tokens = select_candidates(
            cand_scores,
            origin,
            token,
            t,
            limits,
            done,
            finished,
            seqs,
            partial(_history, attn_hist),
            lens,
            opts,
        )
        if all(done):
            break
        index = torch.tensor(rows, device=dev)  # (B*K,)
        seqs = torch.cat(
            [seqs.index_select(0, index), torch.tensor(new_tokens, device=dev).view(-1, 1)], dim=1
        )  # (B*K, t+2)
        attn_hist = attn_hist.index_select(0, index)
        state = state.select(index)
        scores = torch.tensor(new_scores, device=dev, dtype=scores.dtype).view(b, k)
    return [finished[i].best(opts.nbest) for i in range(b)]


def decode(model: Seq2Seq, src: Tensor, src_len: Tensor, opts: DecodeOptions) -> list[list[Hypothesis]]:
    """Greedy when ``beam == 1`` (same result, less work), else beam search."""
    if opts.beam == 1:
        return greedy_decode(model, src, src_len, opts)
    return beam_decode(model, src, src_len, opts)


def _history(hist: Tensor, row: int, n: int) -> Tensor:
    """Row ``row``'s attention history (t, n) over the first n source positions, on the CPU."""
    return hist[row, :, :n].cpu()
