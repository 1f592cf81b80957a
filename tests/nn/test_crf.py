"""The CRF against brute-force enumeration of every tag sequence on tiny cases."""

import itertools

import pytest
import torch

from lstmkit.nn.crf import CRF, IMPOSSIBLE, allowed_transitions


def _path_score(crf: CRF, em: torch.Tensor, path: tuple[int, ...]) -> float:
    """s(y) for one sentence, written out term by term."""
    with torch.no_grad():
        trans, start, end = crf._scores()
    s = start[path[0]] + em[0, path[0]]
    for t in range(1, len(path)):
        s = s + trans[path[t - 1], path[t]] + em[t, path[t]]
    return float(s + end[path[-1]])


def _enumerate(crf: CRF, em: torch.Tensor, length: int) -> dict[tuple[int, ...], float]:
    """Every path of ``length`` tags -> its score (em is (T, K), T >= length)."""
    k = em.size(1)
    return {p: _path_score(crf, em[:length], p) for p in itertools.product(range(k), repeat=length)}


def _case(seed: int, k: int = 3, lengths=(4, 2, 1), constrained: bool = False):
    torch.manual_seed(seed)
    tags = ["O", "B-A", "I-A", "B-B", "I-B"][:k] if constrained else None
    crf = CRF(k, allowed_transitions(tags, "IOB2") if constrained else None)
    with torch.no_grad():  # spread the scores so that paths differ clearly
        crf.transitions.normal_(0, 1.0)
        crf.start_transitions.normal_(0, 1.0)
        crf.end_transitions.normal_(0, 1.0)
    t_max = max(lengths)
    em = torch.randn(len(lengths), t_max, k, dtype=torch.float32)
    mask = torch.arange(t_max).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return crf, em, mask, lengths


@pytest.mark.parametrize("constrained", [False, True])
def test_log_likelihood_matches_enumeration(constrained):
    k = 5 if constrained else 3
    crf, em, mask, lengths = _case(0, k=k, constrained=constrained)
    tags = torch.randint(0, k, em.shape[:2])
    if constrained:  # pick an allowed gold path
        tags = torch.zeros_like(tags)
        tags[0, :2] = torch.tensor([1, 2])
    with torch.no_grad():
        llh, log_zs, gold_scores = crf(em, tags, mask), crf.log_partition(em, mask), crf.score(em, tags, mask)
    for b, n in enumerate(lengths):
        scores = _enumerate(crf, em[b], n)
        log_z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0)
        gold = tuple(tags[b, :n].tolist())
        assert float(log_zs[b]) == pytest.approx(float(log_z), abs=1e-4)
        assert float(llh[b]) == pytest.approx(scores[gold] - float(log_z), abs=1e-4)
        assert float(gold_scores[b]) == pytest.approx(scores[gold], abs=1e-4)


@pytest.mark.parametrize("constrained", [False, True])
def test_viterbi_matches_argmax(constrained):
    k = 5 if constrained else 3
    for seed in range(3):
        crf, em, mask, lengths = _case(seed, k=k, constrained=constrained)
        paths, best = crf.decode(em, mask)
        for b, n in enumerate(lengths):
            scores = _enumerate(crf, em[b], n)
            top = max(scores, key=scores.get)
            assert tuple(paths[b, :n].tolist()) == top
            assert paths[b, n:].eq(0).all()
            assert float(best[b]) == pytest.approx(scores[top], abs=1e-4)


def test_nbest_matches_top_k_of_enumeration():
    crf, em, mask, lengths = _case(1, k=3, lengths=(4, 3, 2))
    n = 5
    nb = crf.nbest(em, mask, n)
    assert nb.paths.shape == (3, n, 4)
    for b, length in enumerate(lengths):
        scores = _enumerate(crf, em[b], length)
        ranked = sorted(scores, key=scores.get, reverse=True)[:n]
        got = [tuple(nb.paths[b, i, :length].tolist()) for i in range(n)]
        assert got == ranked
        assert nb.scores[b].tolist() == pytest.approx([scores[p] for p in ranked], abs=1e-4)
        assert nb.valid[b].all()
    # the best of the n-best is the Viterbi path
    assert torch.equal(nb.paths[:, 0], crf.decode(em, mask)[0])


def test_nbest_marks_missing_paths_invalid():
    crf, em, mask, _ = _case(2, k=2, lengths=(1,))
    nb = crf.nbest(em, mask, 4)  # only 2 paths of length 1 exist
    assert nb.valid[0].tolist() == [True, True, False, False]


def test_nbest_respects_constraints():
    crf, em, mask, lengths = _case(3, k=5, lengths=(3,), constrained=True)
    allowed = {p: s for p, s in _enumerate(crf, em[0], 3).items() if s > IMPOSSIBLE / 2}
    nb = crf.nbest(em, mask, len(allowed) + 3)
    got = {tuple(p.tolist()) for p, v in zip(nb.paths[0], nb.valid[0]) if v}
    assert got == set(allowed)  # every allowed path, and nothing forbidden, is among the valid ones
    assert int(nb.valid[0].sum()) == len(allowed)


def test_marginals_sum_to_one_and_match_enumeration():
    crf, em, mask, lengths = _case(4, k=3)
    marg = crf.marginals(em, mask)
    assert marg.shape == em.shape
    for b, n in enumerate(lengths):
        scores = _enumerate(crf, em[b], n)
        z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0)
        expected = torch.zeros(n, 3, dtype=torch.float64)
        for p, s in scores.items():
            for t, tag in enumerate(p):
                expected[t, tag] += torch.exp(torch.tensor(s, dtype=torch.float64) - z)
        assert torch.allclose(marg[b, :n].double(), expected, atol=1e-5)
        assert torch.allclose(marg[b, :n].sum(-1), torch.ones(n), atol=1e-5)
        assert marg[b, n:].eq(0).all()


def test_marginals_are_the_gradient_of_log_z():
    crf, em, mask, _ = _case(5, k=4)
    em = em.clone().requires_grad_(True)
    crf.log_partition(em, mask).sum().backward()
    assert torch.allclose(em.grad, crf.marginals(em.detach(), mask), atol=1e-5)


def test_padding_invariance():
    crf, em, mask, lengths = _case(6, k=4, lengths=(3, 2))
    tags = torch.randint(0, 4, em.shape[:2])
    extra = 5  # pad every sentence with garbage emissions
    em_pad = torch.cat([em, 100 * torch.randn(2, extra, 4)], dim=1)
    tags_pad = torch.cat([tags, torch.randint(0, 4, (2, extra))], dim=1)
    mask_pad = torch.cat([mask, torch.zeros(2, extra, dtype=torch.bool)], dim=1)
    assert torch.allclose(crf(em, tags, mask), crf(em_pad, tags_pad, mask_pad), atol=1e-5)
    assert torch.equal(crf.decode(em, mask)[0], crf.decode(em_pad, mask_pad)[0][:, :3])
    assert torch.allclose(crf.marginals(em, mask), crf.marginals(em_pad, mask_pad)[:, :3], atol=1e-6)
    nb, nb_pad = crf.nbest(em, mask, 3), crf.nbest(em_pad, mask_pad, 3)
    assert torch.equal(nb.paths, nb_pad.paths[:, :, :3])
    # each sentence alone gives what it gives in the batch
    with torch.no_grad():
        batched = crf(em, tags, mask)
        for b, n in enumerate(lengths):
            alone = crf(em[b : b + 1, :n], tags[b : b + 1, :n], mask[b : b + 1, :n])
            assert float(alone) == pytest.approx(float(batched[b]), abs=1e-5)


def test_gradients_are_finite_with_constraints():
    crf, em, mask, _ = _case(7, k=5, constrained=True)
    tags = torch.zeros(em.shape[:2], dtype=torch.long)
    (-crf(em, tags, mask).sum()).backward()
    for p in crf.parameters():
        assert torch.isfinite(p.grad).all()
    assert crf.transitions.grad[~crf.allowed_trans].eq(0).all()  # forbidden moves never learn


def test_allowed_transitions_per_scheme():
    tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC"]
    idx = {t: i for i, t in enumerate(tags)}
    iob2 = allowed_transitions(tags[:3] + tags[5:], "IOB2")
    i2 = {t: i for i, t in enumerate(tags[:3] + tags[5:])}
    assert not iob2.trans[i2["O"], i2["I-PER"]] and iob2.trans[i2["B-PER"], i2["I-PER"]]
    assert not iob2.trans[i2["B-LOC"], i2["I-PER"]] and not iob2.start[i2["I-LOC"]]
    assert iob2.end.all()
    iob1 = allowed_transitions(tags[:3] + tags[5:], "IOB1")
    assert iob1.trans[i2["O"], i2["I-PER"]] and not iob1.trans[i2["O"], i2["B-PER"]]
    assert iob1.trans[i2["I-PER"], i2["B-PER"]] and not iob1.start[i2["B-PER"]]
    iobes = allowed_transitions(tags[:5], "IOBES")
    assert iobes.trans[idx["B-PER"], idx["E-PER"]] and not iobes.trans[idx["B-PER"], idx["O"]]
    assert iobes.trans[idx["E-PER"], idx["S-PER"]] and not iobes.trans[idx["S-PER"], idx["I-PER"]]
    assert not iobes.end[idx["B-PER"]] and iobes.end[idx["S-PER"]] and not iobes.start[idx["E-PER"]]
    assert allowed_transitions(["NN", "VB"], "none").trans.all()
