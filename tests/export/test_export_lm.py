"""Language model export: ONNX Runtime against torch (greedy continuations, graphs, streams, perplexity),
in-process, in a process without torch and through the command line."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from export_helpers import FIXTURES, assert_same, fixture_sample, run_without_torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError
from lstmkit.runtime import load
from lstmkit.tasks.lm.config import LMConfig
from lstmkit.tasks.lm.model import LanguageModel
from lstmkit.tasks.lm.predict import LMPredictor

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ate", "bone", "a", "bird", "sang"]


@pytest.fixture(scope="module")
def pair(exported):
    return lstmkit.load(FIXTURES / "lm"), load(exported("lm"))


def _variant(kind: str) -> LMPredictor:
    """An untrained 2-layer model: ``tied`` (layers 8 and 6 wide: one state pair per layer) or
    ``adaptive`` (the adaptive softmax, cutoff 6)."""
    import torch

    torch.manual_seed(0)
    settings: dict[str, Any] = {"embed_size": 6, "hidden_size": 8, "num_layers": 2, "dropout": 0.0}
    if kind == "tied":
        settings.update(tie_weights=True, softmax="full")
    else:
        settings.update(softmax="adaptive", cutoffs=[6])
    config = LMConfig().build(settings)
    vocab = Vocab([*WORDS, "<eos>"], specials=("<unk>",))
    dims = {"vocab_size": len(vocab)}
    return LMPredictor(config, LanguageModel(config, dims), dims, {"vocab": vocab.to_json()})


def _prompts(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    prompts = [" ".join(rng.choice(WORDS, size=length)) for _ in range(n)]
    prompts[-1] = " ".join(prompts[-1].split()[: max(1, length // 2)])  # a shorter one among them
    return prompts


def _text(n: int, seed: int) -> list[str]:
    """``n`` word tokens with a few line ends (``<eos>``)."""
    rng = np.random.default_rng(seed)
    return [str(t) for t in rng.choice([*WORDS, "<eos>"], size=n)]


# ------------------------------------------------------------------------------- predict
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("length", [1, 7, 300])
def test_greedy_continuations_match_torch(pair, batch, length):
    torch_p, ort_p = pair
    prompts = _prompts(batch, length, seed=batch * 1000 + length)
    assert_same(ort_p.predict(prompts, length=12), torch_p.predict(prompts, length=12))


def test_runtime_sampling_is_reproducible_with_a_seed(pair):
    _, ort_p = pair
    hot = dict(length=10, temperature=3.0, seed=5)
    a = ort_p.predict(["the dog", "a bird"], **hot)
    assert a == ort_p.predict(["the dog", "a bird"], **hot)
    assert a[1] == ort_p.predict("a bird", length=10, temperature=3.0, seed=6)[0]  # prompt i: seed + i
    assert len({ort_p.predict("the dog", length=10, temperature=3.0, seed=s)[0] for s in range(6)}) > 1
    assert ort_p.predict("the", length=5, temperature=1.0, top_k=1, seed=0) == ort_p.predict("the", length=5)


def test_perplexity_matches_torch(pair):
    torch_p, ort_p = pair
    lines = ["the cat sat on the mat", "the dog ate the bone", "a bird sang", "the cat ate"]
    assert_same(ort_p.evaluate(lines, batch_size=2), torch_p.evaluate(lines, batch_size=2))


# ------------------------------------------------------------------------------- graphs
def _step_vs_sequence(ort_p, torch_p, n: int = 50, batch: int = 3) -> None:
    """``n`` tokens through the step graph equal the model graph at every position (and torch's)."""
    ids = np.stack([ort_p.vocab.encode(_text(n, seed=b)) for b in range(batch)]).astype(np.int64)  # (B, n)
    whole, end = ort_p.next_log_probs(ids, None, every=True)  # model graph: (B, n, V)
    want, want_end = torch_p.next_log_probs(ids, None, every=True)
    np.testing.assert_allclose(whole, want, atol=1e-4)
    state = ort_p._zeros(batch)
    for t in range(n):
        feeds = ort_p._feeds(state)
        logp, *flat = ort_p.graphs["step"](token=ids[:, t], **feeds)  # (B, V)
        state = ort_p._state(flat)
        np.testing.assert_allclose(logp, whole[:, t], atol=1e-4, err_msg=f"position {t}")
    for (h, c), (h_w, c_w), (h_t, c_t) in zip(state, end, want_end):
        np.testing.assert_allclose(h, h_w, atol=1e-4)
        np.testing.assert_allclose(c, c_w, atol=1e-4)
        np.testing.assert_allclose(h, h_t, atol=1e-4)
        np.testing.assert_allclose(c, c_t, atol=1e-4)


def test_step_graph_matches_the_sequence_graph(pair):
    torch_p, ort_p = pair
    assert set(ort_p.graphs) == {"model", "step"} and ort_p.stacked
    _step_vs_sequence(ort_p, torch_p)


@pytest.mark.parametrize("kind", ["tied", "adaptive"])
def test_per_layer_state_and_adaptive_softmax(kind, tmp_path):
    from lstmkit.export import export_model

    torch_p = _variant(kind)
    ort_p = load(export_model(torch_p, tmp_path / "export"))
    assert ort_p.stacked == (kind == "adaptive")
    assert ("h_0" in ort_p.graphs["step"].inputs) == (kind == "tied")
    _step_vs_sequence(ort_p, torch_p, n=20, batch=2)
    prompts = _prompts(3, 7, seed=1)
    assert_same(ort_p.predict(prompts, length=8), torch_p.predict(prompts, length=8))


# ------------------------------------------------------------------------------- streams
def _stream_once_and_by_token(predictor, tokens: list[str]) -> None:
    """One step with the whole text and one step per token give the same logprob and next tokens."""
    text = " ".join(tokens).replace(" <eos> ", "\n").replace("<eos> ", "\n").replace(" <eos>", "\n")
    whole = predictor.stream().step(text)
    assert whole["tokens"] == tokens
    s = predictor.stream()
    steps = [s.step("\n" if t == "<eos>" else t) for t in tokens]
    assert [t for r in steps for t in r["tokens"]] == tokens
    assert abs(sum(r["logprob"] for r in steps) - whole["logprob"]) <= 1e-4
    assert_same(steps[-1]["next"], whole["next"])
    assert len(whole["next"]) == 5 and whole["next"][0]["p"] >= whole["next"][-1]["p"]
    assert json.loads(json.dumps(whole)) == whole


def test_stream_one_token_at_a_time_equals_at_once(pair):
    torch_p, ort_p = pair
    tokens = _text(50, seed=7)
    _stream_once_and_by_token(torch_p, tokens)
    _stream_once_and_by_token(ort_p, tokens)
    assert_same(ort_p.stream().step(tokens), torch_p.stream().step(tokens))  # a list of tokens too


def test_stream_scores_from_the_line_start_and_closes(pair):
    torch_p, ort_p = pair
    for p in (torch_p, ort_p):
        start, _ = p.next_log_probs(np.array([p.line_start()]), None)  # (1, V)
        first = p.stream().step("the")
        assert abs(first["logprob"] - float(start[0, p.vocab.index("the")])) <= 1e-5
        long = _text(300, seed=3)  # over one network call's CHUNK
        s = p.stream()
        parts = [s.step(long[i : i + 60]) for i in range(0, 300, 60)]
        whole = p.stream().step(long)
        assert abs(sum(r["logprob"] for r in parts) - whole["logprob"]) <= 1e-4
        empty = s.step("")
        assert empty["tokens"] == [] and empty["logprob"] == 0.0 and empty["next"] == parts[-1]["next"]
        s.close()
        with pytest.raises(DataError, match="closed"):
            s.step("the")
        with pytest.raises(DataError, match="options.width"):
            p.stream(width=3)
        assert len(p.stream(top=2).step("the")["next"]) == 2
        with pytest.raises(DataError, match="expected text"):
            p.stream().step(3)


# ------------------------------------------------------------------------------- without torch, CLI
def test_export_folder_predicts_without_torch(exported, pair):
    torch_p, _ = pair
    sample = fixture_sample("lm")
    tokens = _text(30, seed=11)
    script = f"""
import json
from typing import Any
from lstmkit.runtime import load
p = load({str(exported("lm"))!r})
out = {{
    "predict": p.predict({sample["inputs"]!r}, **{sample["options"]!r}),
    "stream": p.stream().step({tokens!r}),
    "evaluate": p.evaluate(["the cat sat on the mat", "a bird sang"], batch_size=1),
}}
print(json.dumps(out))
"""
    got = run_without_torch(script)
    assert got["predict"] == sample["outputs"] == torch_p.predict(sample["inputs"], **sample["options"])
    assert_same(got["stream"], torch_p.stream().step(tokens))
    assert_same(got["evaluate"], torch_p.evaluate(["the cat sat on the mat", "a bird sang"], batch_size=1))


def test_cli_predict_and_generate_on_an_export_folder(exported, tmp_path, capsys):
    data = tmp_path / "prompts.txt"
    data.write_text("the cat\n\na bird sang\n", encoding="utf-8")
    out = {}
    for name, folder in (("torch", FIXTURES / "lm"), ("onnx", exported("lm"))):
        assert main(["lm", "predict", "--model", str(folder), "--data", str(data), "--length", "8", "--json"]) == 0
        predicted = json.loads(capsys.readouterr().out)
        assert main(["lm", "generate", "--model", str(folder), "--prompt", "the dog", "--temperature", "0"]) == 0
        out[name] = (predicted, capsys.readouterr().out)
    assert out["onnx"] == out["torch"]
    assert out["onnx"][1].startswith("the dog ")
