"""Translator export: the encoder and decoder-step graphs under the NumPy searches against torch's
greedy and beam search, in-process and in a process without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_helpers import FIXTURES, assert_same, fixture_sample, run_without_torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import LstmkitError
from lstmkit.export import export_model
from lstmkit.runtime import load

#: the predictor's default search (beam 5), beam 3 with 2-best lists, greedy
DECODINGS = [{}, {"beam": 3, "nbest": 2}, {"beam": 1}]


@pytest.fixture(scope="module")
def pair(exported):
    return lstmkit.load(FIXTURES / "translate"), load(exported("translate"))


def _sentences(predictor, n: int, length: int, seed: int) -> list[str]:
    codec = predictor.src_codec
    words = [w for w in codec.id_tokens(range(len(codec))) if not w.startswith("<")]
    rng = np.random.default_rng(seed)
    out = [" ".join(rng.choice(words, size=length)) for _ in range(n)]
    if n > 1:  # a shorter one in the batch: padding
        out[-1] = " ".join(out[-1].split()[: max(1, length // 4)])
    return out


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("length", [1, 7, 300])  # 300 tokens: cut to the model's --max-length 100, one warning
@pytest.mark.parametrize("decoding", DECODINGS, ids=["default", "beam3-nbest2", "greedy"])
def test_runtime_matches_torch(pair, batch, length, decoding, capsys):
    torch_p, ort_p = pair
    sentences = _sentences(torch_p, batch, length, seed=batch * 1000 + length)
    want = torch_p.predict(sentences, **decoding)
    warned = capsys.readouterr().err
    assert_same(ort_p.predict(sentences, **decoding), want)
    assert capsys.readouterr().err == warned  # the same warnings (the cut to --max-length)
    assert ("truncated to 100 tokens" in warned) == (length == 300)


def test_translations_match_with_attention_and_log_probs(pair):
    """``translate``: the n-best lists with raw log-probabilities, source tokens and attention weights."""
    torch_p, ort_p = pair
    sentences = [*_sentences(torch_p, 3, 9, seed=7), "", "der hund"]
    got, want = ort_p.translate(sentences, beam=4, nbest=3), torch_p.translate(sentences, beam=4, nbest=3)
    assert [len(n) for n in got] == [len(n) for n in want] == [3, 3, 3, 0, 3]
    for g_list, w_list in zip(got, want):
        for g, w in zip(g_list, w_list):
            assert isinstance(g.attention, np.ndarray) and g.attention.shape == tuple(w.attention.shape)
            assert_same(g._asdict(), w._asdict())


def test_evaluate_matches_torch(pair):
    torch_p, ort_p = pair
    pairs = [("der hund sieht ein katze", "the dog sees a cat"), ("ein katze mag der hund", "a cat likes the dog")]
    assert_same(ort_p.evaluate(pairs, beam=2), torch_p.evaluate(pairs, beam=2))


def test_export_folder_predicts_without_torch(exported):
    sample = fixture_sample("translate")
    script = f"""
import json
from lstmkit.runtime import load
print(json.dumps(load({str(exported("translate"))!r}).predict({sample["inputs"]!r}, **{sample["options"]!r})))
"""
    got = run_without_torch(script)
    assert_same(got, sample["outputs"])
    assert_same(got, lstmkit.load(FIXTURES / "translate").predict(sample["inputs"], **sample["options"]))


def test_cli_predict_on_an_export_folder(exported, tmp_path, capsys):
    data = tmp_path / "in.txt"
    data.write_text("der hund sieht ein katze\n\nein katze mag der hund\n", encoding="utf-8")
    for extra in (["--json"], ["--beam", "3", "--nbest", "2", "--json"], ["--scores"]):
        args = ["translate", "predict", "--data", str(data), *extra]
        assert main([*args, "--model", str(FIXTURES / "translate")]) == 0
        want = capsys.readouterr().out
        assert main([*args, "--model", str(exported("translate"))]) == 0
        got = capsys.readouterr().out
        if "--json" in extra:
            assert_same(json.loads(got), json.loads(want))
        else:
            assert got == want


#: untrained variants of the fixture's network: the other attention scores, 2 layers, untied output
#: embeddings (A = D), the LSTM variants that export as Scan graphs; hypotheses end by </s> and at the limit
VARIANTS = {
    "dot-2-layers-untied": {"attention": "dot", "num_layers": 2, "tie_embeddings": False},
    "bahdanau-layer-norm-zoneout": {"attention": "bahdanau", "layer_norm": True, "zoneout": 0.1},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_network_variants_match_torch(variant, tmp_path):
    import torch

    from lstmkit.tasks.translate.config import TranslateConfig
    from lstmkit.tasks.translate.model import Seq2Seq
    from lstmkit.tasks.translate.predict import TranslatePredictor

    fixture = lstmkit.load(FIXTURES / "translate")
    torch.manual_seed(0)
    cfg = TranslateConfig().build(tokenizer="whitespace", embed_size=6, hidden_size=5, dropout=0.0, **VARIANTS[variant])
    net = Seq2Seq(cfg, fixture.dims)
    with torch.no_grad():
        net.out.weight.mul_(4)  # peaked output distributions: no near-ties in the search
    torch_p = TranslatePredictor(cfg, net, fixture.dims, fixture.transforms)
    ort_p = load(export_model(torch_p, tmp_path / "export"))
    for length in (7, 20):
        sentences = _sentences(torch_p, 5, length, seed=length)
        assert_same(ort_p.translate(sentences, beam=3, nbest=2), torch_p.translate(sentences, beam=3, nbest=2))


def test_runtime_decodes_on_the_cpu_only(pair):
    with pytest.raises(LstmkitError, match="CPU"):
        pair[1].translate("der hund", device="cuda")
