"""lstmkit.runtime.decode (NumPy) against the torch decoders it mirrors, on seeded random inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

from lstmkit.data.conll import tags_to_spans
from lstmkit.nn.attention import Memory
from lstmkit.nn.crf import CRF, allowed_transitions
from lstmkit.runtime import decode as rd
from lstmkit.tasks.lm import sampling
from lstmkit.tasks.tag import decode as tag_decode
from lstmkit.tasks.translate import decode as tr
from lstmkit.tasks.translate.model import DecoderState

IOBES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
SRC = Path(__file__).resolve().parents[2] / "src"


# ============================================================================================ CRF
CrfArgs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # emissions, mask, start, end, trans


def _crf_case(seed: int, constrained: bool, t_max: int = 7) -> tuple[CRF, torch.Tensor, torch.Tensor, CrfArgs]:
    """A CRF with spread random scores; a batch with every length 1..t_max (shuffled) plus a full one."""
    torch.manual_seed(seed)
    k = len(IOBES) if constrained else 5
    crf = CRF(k, allowed_transitions(IOBES, "IOBES") if constrained else None)
    with torch.no_grad():
        for p in (crf.transitions, crf.start_transitions, crf.end_transitions):
            p.normal_(0, 1.0)
    lengths = torch.cat([torch.randperm(t_max) + 1, torch.tensor([t_max])])  # (B,)
    em = torch.randn(len(lengths), t_max, k) * 2.0  # (B, T, K)
    mask = torch.arange(t_max).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    with torch.no_grad():
        trans, start, end = (x.numpy() for x in crf._scores())  # the effective (constrained) scores
    return crf, em, mask, (em.numpy(), mask.numpy(), start, end, trans)


@pytest.mark.parametrize("constrained", [False, True])
def test_effective_scores_match_crf(constrained: bool) -> None:
    crf, *_ = _crf_case(0, constrained)
    allowed = (crf.allowed_trans.numpy(), crf.allowed_start.numpy(), crf.allowed_end.numpy())
    raw = (crf.transitions, crf.start_transitions, crf.end_transitions)
    got = rd.effective_scores(raw[0].detach().numpy(), raw[1].detach().numpy(), raw[2].detach().numpy(), allowed)
    with torch.no_grad():
        for mine, ref in zip(got, crf._scores()):
            np.testing.assert_array_equal(mine, ref.numpy())


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_matches_crf_decode(seed: int, constrained: bool) -> None:
    crf, em, mask, args = _crf_case(seed, constrained)
    ref_paths, ref_scores = crf.decode(em, mask)
    paths, scores = rd.viterbi(*args)
    lengths = mask.sum(1).tolist()
    assert [len(p) for p in paths] == lengths
    assert paths == [ref_paths[b, :n].tolist() for b, n in enumerate(lengths)]
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, ref_scores.numpy(), rtol=0, atol=1e-5)
    assert len({tuple(p) for p in paths if len(p) == em.size(1)}) > 1 or constrained  # non-trivial paths


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("n", [1, 3])
def test_nbest_matches_crf_nbest(n: int, constrained: bool) -> None:
    crf, em, mask, args = _crf_case(3, constrained)
    ref = crf.nbest(em, mask, n)
    got = rd.nbest(*args, n)
    np.testing.assert_array_equal(got.valid, ref.valid.numpy())
    np.testing.assert_array_equal(got.paths, ref.paths.numpy())
    np.testing.assert_allclose(got.scores, ref.scores.numpy(), rtol=0, atol=1e-5)
    if n == 1:  # the 1-best is the Viterbi path
        paths, _ = rd.viterbi(*args)
        assert [got.paths[b, 0, : len(p)].tolist() for b, p in enumerate(paths)] == paths


@pytest.mark.parametrize("constrained", [False, True])
def test_marginals_and_forward_backward_match(constrained: bool) -> None:
    crf, em, mask, args = _crf_case(4, constrained)
    with torch.no_grad():
        np.testing.assert_allclose(rd.marginals(*args), crf.marginals(em, mask).numpy(), rtol=0, atol=1e-5)
        ref = tag_decode.forward_backward(crf, em, mask)
    for mine, theirs in zip(rd.forward_backward(*args), ref):
        assert mine.dtype == np.float32
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-5, atol=1e-4)  # log space, |x| up to 1e4
    assert np.isclose(rd.marginals(*args).sum(-1), mask.numpy()).all()


@pytest.mark.parametrize("constrained", [False, True])
def test_entity_confidences_match_decode_batch_scores(constrained: bool) -> None:
    """CrfScores / SoftmaxScores against tasks/tag/decode.py's classes, on every entity of the best paths."""
    crf, em, mask, args = _crf_case(5, constrained)
    tags = IOBES if constrained else ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    cont = tag_decode.continuations(tags)
    pairs: list[tuple[Any, Any]] = [(rd.CrfScores(*args), tag_decode._CrfScores(crf, em.double(), mask))]
    pairs.append((rd.SoftmaxScores(em.numpy()), tag_decode._SoftmaxScores(em)))
    paths, _ = rd.viterbi(*args)
    n_spans = 0
    for mine_s, ref_s in pairs:
        for b, path in enumerate(paths):
            n = len(path)
            np.testing.assert_allclose(mine_s.marginals(b, n), ref_s.marginals(b, n), rtol=0, atol=1e-12)
            for span in tags_to_spans([tags[k] for k in path]):
                c = cont[path[span.end]]
                got = mine_s.span(b, n, path, span.start, span.end, c)
                assert got == pytest.approx(ref_s.span(b, n, path, span.start, span.end, c), abs=1e-12)
                n_spans += 1
    assert n_spans > 4


# ==================================================================================== translation
V, D, EOS = 12, 6, 3


class TinySeq2Seq:
    """The part of ``Seq2Seq`` that the torch decoders call (encode, decode_step) on a fixed random map.

    h' = tanh(E[y] W + h U + feed F), c' = c / 2 + h', a = softmax_S(keys h') (masked),
    feed' = tanh((a values) G + h'), logits = feed' O + bias (float32); one layer: h, c (1, N, D).
    """

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        r = lambda *shape, s=1.0: torch.randn(*shape, generator=g, dtype=torch.float64) * s
        self.src_emb, self.emb = r(V, D), r(V, D)
        self.key, self.w, self.u, self.f, self.g = (r(D, D, s=0.7) for _ in range(5))
        self.out, self.bias = r(D, V, s=2.0), r(V, s=0.5)
        self.bias[EOS] += 0.8  # some hypotheses end by </s>, others at their length limit

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Memory, DecoderState]:
        mask = torch.arange(src.size(1)).unsqueeze(0) < src_len.unsqueeze(1)  # (B, S)
        values = torch.tanh(self.src_emb[src]) * mask.unsqueeze(2)  # (B, S, D)
        h = values.sum(1) / src_len.unsqueeze(1)  # (B, D)
        return Memory(values, values @ self.key, mask), DecoderState(h[None], torch.tanh(h)[None], torch.zeros_like(h))

    def decode_step(self, y: torch.Tensor, state: DecoderState, memory: Memory):
        h = torch.tanh(self.emb[y] @ self.w + state.h[0] @ self.u + state.feed @ self.f)  # (N, D)
        c = state.c[0] / 2 + h
        e = (memory.keys @ h.unsqueeze(2)).squeeze(2).masked_fill(~memory.mask, float("-inf"))  # (N, S)
        a = torch.softmax(e, dim=-1)
        feed = torch.tanh((a.unsqueeze(2) * memory.values).sum(1) @ self.g + h)
        return (feed @ self.out + self.bias).float(), DecoderState(h[None], c[None], feed), a.float()

    def numpy_twin(self, src: torch.Tensor, src_len: torch.Tensor):
        """(step, initial state, select) for lstmkit.runtime.decode: state (h, c, feed, values, keys, mask)."""
        memory, st = self.encode(src, src_len)
        p = {k: v.numpy() for k, v in vars(self).items()}

        def step(y: np.ndarray, s: rd.State) -> tuple[np.ndarray, rd.State, np.ndarray]:
            h0, c0, feed0, values, keys, mask = s
            h = np.tanh(p["emb"][y] @ p["w"] + h0[0] @ p["u"] + feed0 @ p["f"])
            e = np.where(mask, (keys @ h[:, :, None])[:, :, 0], -np.inf)
            a = np.exp(e - e.max(-1, keepdims=True))
            a = a / a.sum(-1, keepdims=True)
            feed = np.tanh((a[:, :, None] * values).sum(1) @ p["g"] + h)
            logits = (feed @ p["out"] + p["bias"]).astype(np.float32)
            return logits, (h[None], (c0[0] / 2 + h)[None], feed, values, keys, mask), a.astype(np.float32)

        state = tuple(x.numpy() for x in (*st, *memory))
        return step, state, rd.select_axes(1, 1, 0, 0, 0, 0)


def _assert_same_hypotheses(mine: list[list[rd.Hypothesis]], ref: list[list[tr.Hypothesis]]) -> None:
    assert len(mine) == len(ref)
    for m_list, r_list in zip(mine, ref):
        assert [h.ids for h in m_list] == [h.ids for h in r_list]
        for m, r in zip(m_list, r_list):
            assert m.score == pytest.approx(r.score, abs=1e-5)
            assert m.logprob == pytest.approx(r.logprob, abs=1e-5)
            assert m.attention.dtype == np.float32 and m.attention.shape == tuple(r.attention.shape)
            np.testing.assert_allclose(m.attention, r.attention.numpy(), rtol=0, atol=1e-6)


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src_len = torch.tensor([5, 2, 7, 3, 1])
    src = torch.randint(4, V, (len(src_len), 7), generator=g) * (torch.arange(7) < src_len.unsqueeze(1))
    return src, src_len


@pytest.mark.parametrize("max_ratio", [0.5, 2.0])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize(("beam", "nbest"), [(1, 1), (3, 1), (3, 3), (5, 1), (5, 3)])
def test_translate_decoding_matches_torch(beam: int, nbest: int, alpha: float, max_ratio: float) -> None:
    seed = {1: 7, 3: 3, 5: 6}[beam]  # models whose hypotheses end both ways
    model, (src, src_len) = TinySeq2Seq(seed), _batch(seed + 10)
    ref_opts = tr.DecodeOptions(beam=beam, nbest=nbest, alpha=alpha, max_ratio=max_ratio)
    opts = rd.DecodeOptions(beam=beam, nbest=nbest, alpha=alpha, max_ratio=max_ratio)
    assert vars(opts) == vars(ref_opts)  # the same defaults (ids of <s>, </s>, banned tokens)
    step, state, select = model.numpy_twin(src, src_len)
    ref = tr.decode(cast(Any, model), src, src_len, ref_opts)
    mine = rd.decode(step, state, src_len.numpy(), opts, select)
    _assert_same_hypotheses(mine, ref)
    assert all(len(h) == nbest for h in mine)
    assert len({len(h.ids) for hyps in mine for h in hyps}) > 1
    assert {len(h.ids) < len(h.attention) for hyps in mine for h in hyps} == {True, False}  # </s> and limit ends
    # the beam search itself, K = 1 included (tr.decode sends K = 1 to greedy decoding)
    ref_beam = tr.beam_decode(cast(Any, model), src, src_len, ref_opts)
    _assert_same_hypotheses(rd.beam_decode(step, state, src_len.numpy(), opts, select), ref_beam)


def test_select_helpers() -> None:
    state = (np.arange(12).reshape(2, 3, 2), np.arange(3))
    idx = np.array([2, 0, 0])
    got = rd.select_axes(1, 0)(state, idx)
    np.testing.assert_array_equal(got[0], state[0][:, idx])
    np.testing.assert_array_equal(got[1], state[1][idx])
    np.testing.assert_array_equal(rd.select_rows(state, np.array([1]))[0], state[0][[1]])
    assert rd.max_lengths(np.array([0, 3]), 1.5) == tr.max_lengths(torch.tensor([0, 3]), 1.5)


def test_log_softmax_matches_torch() -> None:
    x = torch.randn(7, 50, generator=torch.Generator().manual_seed(0)) * 5
    np.testing.assert_allclose(rd.log_softmax(x.numpy()), torch.log_softmax(x, -1).numpy(), rtol=0, atol=2e-6)
    half = x.half()
    got = rd.log_softmax(half.numpy())
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, torch.log_softmax(half.float(), -1).numpy(), rtol=0, atol=2e-6)


# ======================================================================================= sampling
def _torch_probs(monkeypatch: pytest.MonkeyPatch, logp: torch.Tensor, temperature: float, top_k: int, top_p: float):
    """The distribution lstmkit.tasks.lm.sampling.sample_next hands to torch.multinomial."""
    seen: list[torch.Tensor] = []

    def fake_multinomial(probs: torch.Tensor, num_samples: int, generator=None) -> torch.Tensor:
        seen.append(probs.clone())
        return torch.zeros(1, dtype=torch.long)

    monkeypatch.setattr(sampling.torch, "multinomial", fake_multinomial)
    sampling.sample_next(logp, temperature, top_k, top_p, sampling.generator(0))
    monkeypatch.undo()
    return seen[0].numpy()


@pytest.mark.parametrize("temperature", [0.3, 1.0, 1.7])
@pytest.mark.parametrize("top_k", [0, 1, 5, 40])
@pytest.mark.parametrize("top_p", [1.0, 0.9, 0.5, 0.05])
def test_sampling_filter_matches_torch(monkeypatch: pytest.MonkeyPatch, temperature: float, top_k: int, top_p: float):
    g = torch.Generator().manual_seed(int(temperature * 10) + top_k)
    logp = torch.log_softmax(torch.randn(40, generator=g) * 2, -1)  # (V,) float32
    ref = _torch_probs(monkeypatch, logp, temperature, top_k, top_p)
    got = rd.filter_probs(logp.numpy(), temperature, top_k, top_p)
    np.testing.assert_array_equal(got > 0, ref > 0)  # the same support
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(0)
    draws = {rd.sample_next(logp.numpy(), temperature, top_k, top_p, rng) for _ in range(200)}
    assert draws <= set(np.flatnonzero(ref > 0).tolist())
    if top_k == 1 or top_p == 0.05:
        assert (ref > 0).sum() == 1
    assert rd.sample_next(logp.numpy(), 0, top_k, top_p, rng) == sampling.sample_next(logp, 0, top_k, top_p, g)


def test_sampling_draws_follow_the_distribution() -> None:
    logp = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(1)
    counts = np.bincount([rd.sample_next(logp, 1.0, 0, 1.0, rng) for _ in range(4000)], minlength=4) / 4000
    np.testing.assert_allclose(counts, np.exp(logp), atol=0.03)
    assert {rd.sample_next(logp, 1.0, 2, 1.0, rng) for _ in range(200)} == {0, 1}


# ===================================================================================== torch-free
BLOCK_TORCH = """
import importlib.abc, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")

sys.meta_path.insert(0, BlockTorch())
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker does not work")
import numpy as np
import lstmkit.runtime.decode as d

assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
paths, _ = d.viterbi(np.zeros((1, 2, 3), np.float32), np.ones((1, 2), bool), *np.zeros((2, 3), np.float32),
                     np.zeros((3, 3), np.float32))
assert len(paths[0]) == 2
print("torch-free")
"""


def test_runtime_decode_imports_without_torch() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "torch-free"


def test_logsumexp_matches_torch_with_infinite_rows() -> None:
    x = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(2))
    x[0, :, 1] = float("-inf")  # a row of only -inf along axis 1
    x[1, 2] = float("-inf")
    for axis in (1, 2):
        np.testing.assert_allclose(rd.logsumexp(x.numpy(), axis), torch.logsumexp(x, axis).numpy(), rtol=0, atol=1e-6)
