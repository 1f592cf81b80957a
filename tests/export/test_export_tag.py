"""Tagger export: ONNX Runtime (emissions) + NumPy CRF against torch, in-process and without torch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from export_helpers import FIXTURES, assert_same, fixture_sample, run_without_torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.runtime import load
from lstmkit.tasks.tag.model import BiLSTMTagger
from lstmkit.tasks.tag.predict import TagPredictor

CRF_OPTIONS = {"nbest": 3, "confidence": True}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One torch thread: the models are tiny, and on a small shared machine a second thread only waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair(exported):
    return lstmkit.load(FIXTURES / "tag"), load(exported("tag"))


def _variant(tmp_path_factory: pytest.TempPathFactory, seed: int, **settings: object) -> tuple[Any, Any]:
    """The fixture tagger rebuilt with other ``settings`` (random weights), saved, exported and loaded."""
    base = lstmkit.load(FIXTURES / "tag")
    cfg = base.config.build(**settings)
    torch.manual_seed(seed)
    model = BiLSTMTagger(cfg, base.dims)
    for p in model.parameters():  # sharper scores than the initialisation's: fewer near-ties
        p.data.mul_(3.0)
    folder = tmp_path_factory.mktemp("tag-variant") / "model"
    TagPredictor(cfg, model, base.dims, base.transforms).save(folder)
    from lstmkit.export import export_model

    out = export_model(folder, folder.parent / "export")
    return lstmkit.load(folder), load(out)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """A softmax tagger with a 2-layer BiLSTM, a char BiLSTM and no casing; a CRF tagger with words and
    casing only: other graph inputs, the char BiLSTM inside the graph, the softmax decoding."""
    return {
        "char-lstm-softmax": _variant(
            tmp_path_factory, 1, char_encoder="lstm", casing=False, crf=False, num_layers=2, hidden_size=5
        ),
        "words-casing-crf": _variant(tmp_path_factory, 2, char_encoder="none"),
    }


def _sentences(predictor, n: int, length: int, seed: int) -> list[list[str]]:
    """``n`` sentences of ``length`` tokens (the last one shorter: padding): known words in several
    casings, unknown words, numbers and punctuation."""
    rng = np.random.default_rng(seed)
    known = [w for w in predictor.encoder.words.tokens if not w.startswith("<")]
    unknown = ["Zyx", "qwerty", "ÄÖÜ", "2024", "A1b2", "---", "MacDonald", "x"]
    pool = known + [w.upper() for w in known] + [w.title() for w in known] + unknown
    sents = [[str(w) for w in rng.choice(pool, size=length)] for _ in range(n)]
    sents[-1] = sents[-1][: max(1, length // 2)]
    return sents


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("length", [1, 7, 300])
def test_runtime_matches_torch(pair, batch, length):
    torch_p, ort_p = pair
    sents = _sentences(torch_p, batch, length, seed=batch * 1000 + length)
    for options in ({}, CRF_OPTIONS):
        assert_same(ort_p.predict(sents, **options), torch_p.predict(sents, **options))


@pytest.mark.parametrize("name", ["char-lstm-softmax", "words-casing-crf"])
def test_variants_match_torch(variants, name):
    torch_p, ort_p = variants[name]
    options = {"confidence": True} if name.endswith("softmax") else CRF_OPTIONS
    for batch, length in ((1, 1), (5, 7), (5, 300)):
        sents = _sentences(torch_p, batch, length, seed=batch + length)
        assert_same(ort_p.predict(sents, **options), torch_p.predict(sents, **options))


def test_long_sentences_in_pieces_and_small_batches(pair):
    """A sentence over --max-len is tagged in pieces (n-best paths combined); batches of 2."""
    torch_p, ort_p = pair
    sents = _sentences(torch_p, 5, 40, seed=7)
    options = {**CRF_OPTIONS, "max_len": 16, "batch_size": 2}
    assert_same(ort_p.predict(sents, **options), torch_p.predict(sents, **options))


def test_export_holds_the_crf_scores(pair, exported):
    torch_p, ort_p = pair
    header = json.loads((exported("tag") / "config.json").read_text(encoding="utf-8"))
    assert list(header["graphs"]) == ["emissions"]
    trans, start, end = (t.detach().numpy() for t in torch_p.net.crf._scores())
    got = header["extras"]
    for name, want in (("start", start), ("end", end), ("transitions", trans)):
        np.testing.assert_array_equal(np.asarray(got[name], dtype=np.float32), want)


def test_export_folder_predicts_without_torch(exported):
    sample = fixture_sample("tag")
    script = f"""
import json
from typing import Any
from lstmkit.io import to_jsonable
from lstmkit.runtime import load
print(json.dumps(to_jsonable(load({str(exported("tag"))!r}).predict({sample["inputs"]!r}, **{sample["options"]!r}))))
"""
    got = run_without_torch(script)
    assert_same(got, lstmkit.load(FIXTURES / "tag").predict(sample["inputs"], **sample["options"]))
    assert_same(got, sample["outputs"])


@pytest.mark.parametrize("flags", [["--json", "--nbest", "2", "--confidence"], []])
def test_cli_predict_on_an_export_folder(exported, tmp_path, capsys, flags):
    data = tmp_path / "in.txt"
    data.write_text("Peter lives in Berlin\n\nEU met John Blackburn in Paris .\n", encoding="utf-8")
    assert main(["tag", "predict", "--model", str(FIXTURES / "tag"), "--data", str(data), *flags]) == 0
    want = capsys.readouterr().out
    assert main(["tag", "predict", "--model", str(exported("tag")), "--data", str(data), *flags]) == 0
    got = capsys.readouterr().out
    if flags:
        assert_same(json.loads(got), json.loads(want))
    else:  # CoNLL columns: tokens and tags, identical
        assert got == want and "Berlin" in got
