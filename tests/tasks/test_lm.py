"""Tests for lstmkit lm: batchify/BPTT, carried state, dropout places, metrics by hand, training, exact
reload, predict (greedy by default, seeded sampling), streaming generation, CLI, bad input."""

import io
import json
import math
import random
import shutil

import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.config import ConfigError
from lstmkit.data.vocab import Vocab
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.io import to_jsonable
from lstmkit.tasks.lm import model as M
from lstmkit.tasks.lm.config import LMConfig, LMPredict
from lstmkit.tasks.lm.data import (
    batchify,
    collate,
    in_order,
    join_tokens,
    split_stream,
    tokenize_lines,
    windows,
)
from lstmkit.tasks.lm.model import LanguageModel
from lstmkit.tasks.lm.predict import LMPredictor
from lstmkit.tasks.lm.sampling import sample_next
from lstmkit.tasks.lm.task import CarriedState

SENTENCES = ["the cat sat on the mat .", "the dog ate the bone .", "a bird sang in the tree ."]
SMALL = dict(embed_size=16, hidden_size=24, num_layers=2, dropout=0.0)
TINY = dict(SMALL, batch_size=8, lr=0.03, device="cpu", patience=0)


def write_corpus(path):
    rng = random.Random(0)
    path.write_text("\n".join(rng.choice(SENTENCES) for _ in range(300)) + "\n")
    return path


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "train.txt")


@pytest.fixture(scope="module")
def word_model(tmp_path_factory):
    """A word LM trained once (tied weights) on the corpus: (result, folder, corpus)."""
    folder = tmp_path_factory.mktemp("lm")
    data = write_corpus(folder / "train.txt")
    res = tiny_train(data, out=folder / "m", bptt=12, tie_weights=True)
    return res, folder / "m", data


def tiny_train(data, valid=None, out=None, epochs=3, **settings):
    return lstmkit.train("lm", data, valid, out, quiet=True, **{**TINY, "epochs": epochs, **settings})


def run_lm(*argv):
    """``lstmkit lm ...`` in-process on one thread (the CLI would otherwise take every core)."""
    return main(["lm", *argv, "--threads", "1"])


def cfg(**settings):
    return LMConfig().build(settings)


def net(vocab_size, **settings):
    return LanguageModel(cfg(**{**SMALL, **settings}), {"vocab_size": vocab_size})


def test_batchify_and_windows():
    grid = batchify(list(range(26)), 4)  # 26 // 4 = 6 columns, tail dropped
    assert grid.tolist()[1] == [6, 7, 8, 9, 10, 11]
    ws = windows(grid, 4)
    assert [w.x.shape[1] for w in ws] == [4, 1]  # 5 input steps: windows of 4 then 1
    assert torch.equal(ws[0].y, grid[:, 1:5]) and torch.equal(ws[1].x, grid[:, 4:5])
    assert [w.first for w in ws] == [True, False]
    assert in_order(0, torch.Generator(), 3) == [[0], [1], [2]]


def test_word_stream_marks_line_ends_and_split():
    assert tokenize_lines(["a b", "", "c"], cfg(level="word")) == ["a", "b", "<eos>", "<eos>", "c", "<eos>"]
    assert tokenize_lines(["ab"], cfg(level="char")) == ["a", "b", "\n"]
    assert join_tokens(["a", "b", "<eos>", "c"], "word") == "a b\nc"
    assert split_stream(list("abcdefghij"), [0.8, 0.2], "x") == [list("abcdefgh"), list("ij")]
    with pytest.raises(DataError, match="too short"):
        split_stream(list("abc"), [0.9, 0.1], "x")
    for bad in ([0.9, 0.9], [1.0], [0.5, 0.2, 0.1, 0.1], [0.9, 0.0]):
        with pytest.raises(ConfigError, match="--split"):
            cfg(split=bad)
    assert cfg(split=[0.8, 0.1, 0.1]).split == [0.8, 0.1, 0.1]


def test_config_rules_between_settings():
    with pytest.raises(ConfigError, match=r"--tie-weights\) needs the full softmax"):
        cfg(tie_weights=True, softmax="adaptive")
    with pytest.raises(ConfigError, match=r"--cutoffs\) must be increasing"):
        cfg(cutoffs=[50, 10])
    with pytest.raises(ConfigError, match="--bidirectional"):  # a language model reads left to right only
        cfg(bidirectional=True)


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_carried_state_windows_equal_one_pass(softmax):
    """Evaluating window by window with the carried state equals one forward over the whole stream."""
    torch.manual_seed(0)
    lm = net(30, softmax=softmax, cutoffs=[10]).eval()
    assert lm.kind == softmax
    grid = torch.randint(0, 30, (3, 41))
    state, total = None, 0.0
    with torch.no_grad():
        for w in windows(grid, 7):
            out = lm(w.x, state)
            state = out.state
            total += float(lm.nll(out.hidden, w.y))
        whole = lm(grid[:, :-1], None)
        assert total == pytest.approx(float(lm.nll(whole.hidden, grid[:, 1:])), rel=1e-5)


def test_each_validation_pass_restarts_from_zero_state():
    torch.manual_seed(0)
    lm = net(20).eval()
    grid = torch.randint(0, 20, (2, 31))
    ws = windows(grid, 5)
    carried = CarriedState("word")
    passes = []
    with torch.no_grad():
        for _ in range(2):
            for i in range(0, len(ws), 2):  # the trainer hands validation windows in chunks, in order
                carried.loss(lm, collate(ws[i : i + 2]))
            passes.append(carried.metrics(lm, [])["nats_per_token"])
        whole = lm(grid[:, :-1]).hidden
        expected = float(lm.nll(whole, grid[:, 1:])) / grid[:, 1:].numel()
    assert passes[0] == passes[1] == pytest.approx(expected, rel=1e-5)


def test_dropout_is_the_stacks_dropout_with_per_place_overrides(monkeypatch):
    """--dropout is locked dropout on the input, between layers and on the output; each
    dropout_in / dropout_hidden / dropout_out overrides its own place; nothing else drops."""
    assert cfg(dropout=0.3).rates() == (0.3, 0.3, 0.3)
    assert cfg(dropout=0.3, dropout_hidden=0.1, dropout_out=0.0).rates() == (0.3, 0.1, 0.0)
    calls = []
    real = M.locked_dropout
    monkeypatch.setattr(
        M, "locked_dropout", lambda x, p, training: (calls.append((x.shape[-1], p)), real(x, p, training))[1]
    )
    lm = net(12, embed_size=6, hidden_size=10, num_layers=3, dropout=0.3, dropout_hidden=0.1, dropout_out=0.2)
    lm.train()(torch.randint(0, 12, (2, 5)))
    assert calls == [(6, 0.3), (10, 0.1), (10, 0.1), (10, 0.2)]  # input, between 1-2, between 2-3, output
    torch.manual_seed(0)
    x = torch.randint(0, 12, (4, 9))
    off = net(12, num_layers=2, dropout=0.5, dropout_in=0.0, dropout_hidden=0.0, dropout_out=0.0)
    assert torch.equal(off.train()(x).hidden, off.eval()(x).hidden)  # overrides win; the core adds none
    on = net(12, num_layers=2, dropout=0.5)
    assert not torch.equal(on.train()(x).hidden, on.eval()(x).hidden)


def test_step_matches_forward_on_prefix():
    """One step from the carried state gives the same next-token distribution as re-running the prefix."""
    torch.manual_seed(0)
    lm = net(25, tie_weights=True, embed_size=24).eval()
    ids = torch.tensor([[3, 7, 1, 9, 4]])
    out = lm(ids[:, :4], None)
    logp_step, _ = lm.step(ids[:, 4], out.state)
    full = lm(ids, None)
    torch.testing.assert_close(logp_step, lm.log_probs(full.hidden[:, -1]), rtol=1e-5, atol=1e-5)


def test_sampling_filters():
    logp = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    g = torch.Generator().manual_seed(0)
    assert all(sample_next(logp, 1.0, 1, 1.0, g) == 0 for _ in range(20))  # top-k 1 = greedy
    assert all(sample_next(logp, 1.0, 0, 0.4, g) == 0 for _ in range(20))  # nucleus {0}
    assert {sample_next(logp, 1.0, 0, 0.7, g) for _ in range(200)} == {0, 1}  # nucleus {0, 1}
    assert {sample_next(logp, 1.0, 2, 1.0, g) for _ in range(200)} == {0, 1}
    assert sample_next(torch.tensor([0.1, 0.2, 0.7]).log(), 0.0, 0, 1.0, g) == 2
    for bad, flag in (
        ({"temperature": -1.0}, "--temperature"),
        ({"top_p": 0.0}, "--top-p"),
        ({"top_k": -1}, "--top-k"),
    ):
        with pytest.raises(ConfigError, match=flag):
            LMPredict().build(bad)


def fixed_distribution(level, tokens, probs):
    """A predictor whose next-token distribution is ``probs`` whatever the context (decoder W = 0, b = log p)."""
    config = cfg(level=level, embed_size=2, hidden_size=2, num_layers=1, bptt=3, softmax="full")
    vocab = Vocab(tokens, specials=("<unk>",))
    dims = {"vocab_size": len(vocab)}
    model = LanguageModel(config, dims)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.copy_(torch.tensor(probs).log())
    return LMPredictor(config, model, dims, {"vocab": vocab.to_json()})


def test_metrics_by_hand():
    """p(<unk>, a, b, end) = (1/8, 1/2, 1/4, 1/8): the stream 'a b END a END' predicts b, END, a, END,
    i.e. 2 + 3 + 1 + 3 = 9 bits over 4 tokens: 2.25 bits per token, perplexity 2^2.25."""
    probs = [1 / 8, 1 / 2, 1 / 4, 1 / 8]
    char = fixed_distribution("char", ["a", "b", "\n"], probs).evaluate(["ab", "a"], batch_size=1)
    assert char["tokens"] == 4
    assert char["bits_per_char"] == pytest.approx(2.25, rel=1e-6)
    assert char["nats_per_char"] == pytest.approx(2.25 * 0.6931471805599453, rel=1e-6)
    word = fixed_distribution("word", ["a", "b", "<eos>"], probs).evaluate(["a b", "a"], batch_size=1)
    assert word["tokens"] == 4
    assert word["perplexity"] == pytest.approx(4.756828460010884, rel=1e-6)  # 2 ** 2.25
    assert word["nats_per_token"] == pytest.approx(1.5596, abs=1e-4)  # 2.25 ln 2


def test_word_lm_learns_reloads_and_generates_by_steps(word_model):
    res, folder, data = word_model
    assert res.metrics["valid"]["perplexity"] < 3.0  # unigram perplexity of this corpus is about 12
    assert set(res.metrics) == {"training", "valid"} and res.metrics["training"]["best_epoch"] >= 1
    # one validation perplexity: each epoch's (--batch-size 8 rows for training) and the final one are
    # both computed on --eval-batch-size (10) rows, so the best epoch's number is the reported one
    assert res.metrics["training"]["perplexity"] == pytest.approx(res.metrics["valid"]["perplexity"], rel=1e-6)
    loaded = lstmkit.load(folder)
    assert isinstance(loaded, LMPredictor)
    assert loaded.evaluate(data) == res.predictor.evaluate(data)
    assert json.loads((folder / "metrics.json").read_text())["valid"] == res.metrics["valid"]
    gen = list(loaded.generate("the dog", 15, temperature=0.8, seed=3))
    assert gen == list(res.predictor.generate("the dog", 15, temperature=0.8, seed=3)) and len(gen) == 15
    assert set(gen) <= set(loaded.vocab.tokens)
    # streaming: the prompt is read by one forward, then exactly one step per token
    calls = {"forward": 0, "step": 0}
    fwd, stp = loaded.model.forward, loaded.model.step
    loaded.model.forward = lambda *a, **k: (calls.__setitem__("forward", calls["forward"] + 1), fwd(*a, **k))[1]
    loaded.model.step = lambda *a, **k: (calls.__setitem__("step", calls["step"] + 1), stp(*a, **k))[1]
    list(loaded.generate("the cat sat", 10, seed=0))
    assert calls == {"forward": 1, "step": 10}
    gates = loaded.trace_gates(loaded.inspect_sample())
    assert len(gates) == 2 and gates[1].o.shape[-1] == 16  # top layer = embedding size (tied)


def argmax_chain(p, prompt, n):
    """Greedy decoding the slow way: the whole prefix re-run for each token, the most likely one appended."""
    ids, out = p.start_ids(prompt), []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(p.model.log_probs(p.model(torch.tensor([ids])).hidden[:, -1])[0].argmax())
            ids.append(nxt)
            out.append(p.vocab.tokens[nxt])
    return join_tokens(out, "word")


def test_predict_one_greedy_continuation_per_prompt(word_model):
    _, folder, _ = word_model
    p = lstmkit.load(folder)
    one = p.predict("the dog ate", length=3)  # a string is one prompt
    assert len(one) == 1 and len(one[0].split()) == 3
    prompts = ["the cat", "", "a bird sang .\nthe", "the dog ate"]
    many = p.predict(prompts, length=6)
    assert many == [argmax_chain(p, q, 6) for q in prompts]  # greedy, one output per prompt, in order
    assert many[3].startswith(one[0]) and many[1] != ""  # an empty prompt continues from a line start
    ids = p.encode_prompt("a bird sang .\nthe")[0]
    assert p.vocab.decode(ids) == ["a", "bird", "sang", ".", "<eos>", "the"]  # a line break is <eos>, as in training
    assert p.predict(prompts, length=6) == many  # deterministic by default
    assert p.predict([]) == [] and p.predict("the cat", length=0) == [""]
    assert to_jsonable(many) == many


def test_predict_samples_only_when_asked_and_a_seed_reproduces(word_model):
    _, folder, _ = word_model
    p = lstmkit.load(folder)
    hot = dict(length=8, temperature=3.0, seed=5)
    a = p.predict(["the dog", "a bird"], **hot)
    assert a == p.predict(["the dog", "a bird"], **hot)
    assert a[1] == p.predict(["the cat", "a bird"], **hot)[1]  # prompt i is sampled with seed + i
    assert a[1] == p.predict("a bird", length=8, temperature=3.0, seed=6)[0]
    assert a[0] == join_tokens(p.generate("the dog", 8, 3.0, seed=5), "word")  # the same sampler as generate
    assert len(set(p.predict(["the dog"] * 4, **hot))) > 1  # a repeated prompt gives several samples
    assert len({p.predict("the dog", length=8, temperature=3.0, seed=s)[0] for s in range(6)}) > 1


def test_char_lm_adaptive_and_awd_options(corpus, tmp_path):
    awd = dict(dropout=0.1, dropout_in=0.1, dropout_hidden=0.1, dropout_emb=0.1, weight_drop=0.2, alpha=1.0, beta=1.0)
    res = tiny_train(corpus, epochs=1, level="char", bptt=16, split=[0.8, 0.1, 0.1], **awd)
    v = res.metrics["valid"]
    assert v["bits_per_char"] < math.log2(len(res.predictor.vocab)) and "test" in res.metrics
    assert res.metrics["test"]["tokens"] > 0 and "perplexity" not in v
    assert res.predictor.predict("the c", length=3)[0] != ""
    ad = tiny_train(corpus, out=tmp_path / "a", epochs=1, bptt=12, softmax="adaptive", cutoffs=[5])
    assert ad.predictor.model.kind == "adaptive"
    assert lstmkit.load(tmp_path / "a").evaluate(corpus) == ad.predictor.evaluate(corpus)


def test_same_seed_same_metrics(corpus):
    runs = [tiny_train(corpus, epochs=1, bptt=10, dropout=0.2) for _ in range(2)]
    assert runs[0].metrics == runs[1].metrics


def test_cli_train_evaluate_predict_generate(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m"
    small = ["--epochs", "1", "--embed-size", "8", "--hidden-size", "8", "--bptt", "10", "--batch-size", "4"]
    assert run_lm("train", "--data", str(corpus), "--out", str(out), *small, "--quiet") == 0
    capsys.readouterr()
    assert run_lm("evaluate", "--model", str(out), "--data", str(corpus), "--json") == 0
    m = json.loads(capsys.readouterr().out)
    assert m == lstmkit.load(out).evaluate(corpus)  # the CLI prints what the Python API returns
    assert run_lm("evaluate", "--model", str(out), "--data", str(corpus), "--batch-size", "3") == 0
    assert capsys.readouterr().out.startswith("perplexity ")
    prompts = tmp_path / "p.txt"
    prompts.write_text("the cat\n\nthe dog\n")
    assert run_lm("predict", "--model", str(out), "--data", str(prompts), "--length", "4", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == lstmkit.load(out).predict(["the cat", "", "the dog"], length=4)  # the empty line keeps its row
    assert run_lm("predict", "--model", str(out), "--data", str(prompts), "--length", "4") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prompt\tcontinuation" and [ln.split("\t")[0] for ln in lines[1:]] == ["the cat", "", "the dog"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"the cat\n")))
    assert run_lm("predict", "--model", str(out), "--length", "4", "--json") == 0  # --data - by default
    assert json.loads(capsys.readouterr().out) == rows[:1]
    gen = ["generate", "--model", str(out), "--prompt", "the cat", "--length", "4"]
    assert run_lm(*gen, "--temperature", "0") == 0
    cap = capsys.readouterr()
    assert cap.out.split() == ("the cat " + rows[0]).split() and cap.err == ""  # greedy: predict's text
    assert run_lm(*gen, "--seed", "1") == 0 and capsys.readouterr().out.startswith("the cat")
    assert run_lm("generate", "--model", str(out), "--prompt", "zebra", "--length", "2", "--seed", "1") == 0
    assert "warning: prompt: all 1 tokens are unknown" in capsys.readouterr().err


def test_cli_bad_input_exit_2(corpus, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\n\xfe\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases = [
        (["--data", str(bad)], "bad.txt: line 3 is not valid UTF-8"),
        (["--data", str(empty)], "empty"),
        (["--data", str(corpus), "--tie-weights", "--softmax", "adaptive"], "--tie-weights) needs the full"),
        (["--data", str(corpus), "--split", "0.9,0.5"], "--split"),
        (["--data", str(corpus), "--softmax", "adaptive", "--cutoffs", "5,500"], "below the vocabulary size"),
        (["--data", str(corpus), "--bidirectional"], "unrecognized arguments: --bidirectional"),
    ]
    for args, msg in cases:
        assert run_lm("train", "--out", str(tmp_path / "x"), "--epochs", "1", "--quiet", *args) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_vocabulary_mismatch_is_reported(word_model, tmp_path, capsys):
    folder = shutil.copytree(word_model[1], tmp_path / "m")
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["tokens"].append("extra")
    (folder / "vocab.json").write_text(json.dumps(vocab))
    assert run_lm("generate", "--model", str(folder), "--length", "3") == 2
    assert "vocab.json: " in capsys.readouterr().err
    with pytest.raises(ModelFolderError, match="vocab.json: .* tokens, the model was built for"):
        lstmkit.load(folder)
