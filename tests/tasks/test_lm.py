"""Tests for lstmkit lm: batchify/BPTT, carried state, training, exact reload, streaming generation, CLI."""

import json
import math
import random

import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import LstmkitError
from lstmkit.tasks import lm as L
from lstmkit.tasks.lm_model import LanguageModel, LMShape
from lstmkit.train import TrainConfig

SENTENCES = ["the cat sat on the mat .", "the dog ate the bone .", "a bird sang in the tree ."]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "train.txt"
    path.write_text("\n".join(rng.choice(SENTENCES) for _ in range(300)) + "\n")
    return path


def small(**kw):
    d = dict(embed_size=16, hidden_size=24, num_layers=2, dropout=0.0)
    d.update(kw)
    return LMShape(**d)


def tcfg(epochs=3, **kw):
    return TrainConfig(epochs=epochs, batch_size=8, lr=0.03, quiet=True, device="cpu", patience=0, **kw)


def test_batchify_and_windows():
    grid = L.batchify(list(range(26)), 4)  # 26 // 4 = 6 columns, tail dropped
    assert grid.tolist()[1] == [6, 7, 8, 9, 10, 11]
    ws = L.windows(grid, 4)
    assert [w.x.shape[1] for w in ws] == [4, 1]  # 5 input steps: windows of 4 then 1
    assert torch.equal(ws[0].y, grid[:, 1:5]) and torch.equal(ws[1].x, grid[:, 4:5])
    assert L.in_order(0, torch.Generator(), 3) == [[0], [1], [2]]


def test_word_stream_marks_line_ends_and_split():
    cfg = L.LMConfig(level="word")
    assert L.tokenize_lines(["a b", "", "c"], cfg) == ["a", "b", "<eos>", "<eos>", "c", "<eos>"]
    assert L.tokenize_lines(["ab"], L.LMConfig(level="char")) == ["a", "b", "\n"]
    parts = L.split_stream(list("abcdefghij"), [0.8, 0.2], "x")
    assert parts == [list("abcdefgh"), list("ij")]
    with pytest.raises(LstmkitError):
        L.split_stream(list("abc"), [0.9, 0.9], "x")


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_carried_state_windows_equal_one_pass(softmax):
    """Evaluating window by window with the carried state equals one forward over the whole stream."""
    torch.manual_seed(0)
    net = LanguageModel(small(vocab_size=30, softmax=softmax, cutoffs=[10])).eval()
    grid = torch.randint(0, 30, (3, 41))
    state, total = None, 0.0
    with torch.no_grad():
        for w in L.windows(grid, 7):
            out = net(w.x, state)
            state = out.state
            total += float(net.nll(out.hidden, w.y))
        whole = net(grid[:, :-1], None)
        assert total == pytest.approx(float(net.nll(whole.hidden, grid[:, 1:])), rel=1e-5)


def test_each_validation_pass_restarts_from_zero_state():
    torch.manual_seed(0)
    net = LanguageModel(small(vocab_size=20)).eval()
    grid = torch.randint(0, 20, (2, 31))
    ws = L.windows(grid, 5)
    carried = L.CarriedState(net.shape, "word")
    passes = []
    with torch.no_grad():
        for _ in range(2):
            for i in range(0, len(ws), 2):  # the trainer hands validation windows in chunks, in order
                carried.loss_fn(net, L.collate(ws[i : i + 2]))
            passes.append(carried.metrics(net, [])["nats_per_token"])
        whole = net(grid[:, :-1]).hidden
        expected = float(net.nll(whole, grid[:, 1:])) / grid[:, 1:].numel()
    assert passes[0] == passes[1] == pytest.approx(expected, rel=1e-5)


def test_step_matches_forward_on_prefix():
    """One step from the carried state gives the same next-token distribution as re-running the prefix."""
    torch.manual_seed(0)
    net = LanguageModel(small(vocab_size=25, tie_weights=True, embed_size=24)).eval()
    ids = torch.tensor([[3, 7, 1, 9, 4]])
    out = net(ids[:, :4], None)
    logp_step, _ = net.step(ids[:, 4], out.state)
    full = net(ids, None)
    torch.testing.assert_close(logp_step, net.log_probs(full.hidden[:, -1]), rtol=1e-5, atol=1e-5)


def test_sampling_filters():
    logp = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    g = torch.Generator().manual_seed(0)
    assert all(L.sample_next(logp, 1.0, 1, 1.0, g) == 0 for _ in range(20))  # top-k 1 = greedy
    assert all(L.sample_next(logp, 1.0, 0, 0.4, g) == 0 for _ in range(20))  # nucleus {0}
    assert {L.sample_next(logp, 1.0, 0, 0.7, g) for _ in range(200)} == {0, 1}  # nucleus {0, 1}
    assert {L.sample_next(logp, 1.0, 2, 1.0, g) for _ in range(200)} == {0, 1}
    assert L.sample_next(logp, 0.0, 0, 1.0, g) == 0
    with pytest.raises(LstmkitError):
        L.check_sampling(-1.0, 0, 1.0, 10)


def test_word_lm_learns_reloads_and_generates_by_steps(corpus, tmp_path):
    res = L.train(
        corpus, out=tmp_path / "m", config=L.LMConfig(bptt=12), model=small(tie_weights=True), train_config=tcfg()
    )
    ppl = res.metrics["valid"]["perplexity"]
    assert ppl < 3.0  # unigram perplexity of this corpus is about 12
    loaded = lstmkit.load(tmp_path / "m")
    assert loaded.evaluate_file(corpus) == res.predictor.evaluate_file(corpus)
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


def test_char_lm_adaptive_and_awd_options(corpus, tmp_path):
    shape = small(
        dropout=0.1, dropout_in=0.1, dropout_hidden=0.1, dropout_emb=0.1, weight_drop=0.2, alpha=1.0, beta=1.0
    )
    res = L.train(
        corpus,
        config=L.LMConfig(level="char", bptt=16, split=[0.8, 0.1, 0.1]),
        model=shape,
        train_config=tcfg(epochs=1),
    )
    v = res.metrics["valid"]
    assert v["bits_per_char"] == pytest.approx(v["nats_per_char"] / math.log(2))
    assert v["bits_per_char"] < math.log2(len(res.predictor.vocab)) and "test" in res.metrics
    ad = L.train(
        corpus,
        out=tmp_path / "a",
        config=L.LMConfig(bptt=12),
        model=small(softmax="adaptive", cutoffs=[5]),
        train_config=tcfg(epochs=1),
    )
    assert ad.predictor.model.kind == "adaptive"
    assert lstmkit.load(tmp_path / "a").evaluate_file(corpus) == ad.predictor.evaluate_file(corpus)


def test_same_seed_same_metrics(corpus):
    runs = [
        L.train(corpus, config=L.LMConfig(bptt=10), model=small(dropout=0.2), train_config=tcfg(epochs=1))
        for _ in range(2)
    ]
    assert runs[0].metrics == runs[1].metrics


def test_cli_train_evaluate_generate(corpus, tmp_path, capsys):
    out = tmp_path / "m"
    assert (
        main(
            [
                "lm",
                "train",
                "--data",
                str(corpus),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--embed-size",
                "8",
                "--hidden-size",
                "8",
                "--bptt",
                "10",
                "--batch-size",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["lm", "evaluate", "--model", str(out), "--data", str(corpus), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["perplexity"] == pytest.approx(math.exp(m["nats_per_token"]))
    assert main(["lm", "generate", "--model", str(out), "--prompt", "the cat", "--length", "5", "--seed", "1"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("the cat") and cap.err == ""
    assert main(["lm", "generate", "--model", str(out), "--prompt", "zebra", "--length", "2", "--seed", "1"]) == 0
    assert "warning: prompt: all 1 tokens are unknown" in capsys.readouterr().err


def test_cli_bad_input_exit_2(corpus, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\n\xfe\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases = [
        (["--data", str(bad)], "bad.txt: line 3 is not valid UTF-8"),
        (["--data", str(empty)], "empty"),
        (["--data", str(corpus), "--tie-weights", "--softmax", "adaptive"], "--tie-weights needs the full"),
        (["--data", str(corpus), "--split", "0.9,0.5"], "--split"),
    ]
    for args, msg in cases:
        assert main(["lm", "train", "--out", str(tmp_path / "x"), "--epochs", "1", "--quiet", *args]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


def test_vocabulary_mismatch_is_reported(corpus, tmp_path, capsys):
    L.train(
        corpus,
        out=tmp_path / "m",
        config=L.LMConfig(bptt=10),
        model=small(embed_size=8, hidden_size=8),
        train_config=tcfg(epochs=1),
    )
    vocab = json.loads((tmp_path / "m" / "vocab.json").read_text())
    vocab["tokens"].append("extra")
    (tmp_path / "m" / "vocab.json").write_text(json.dumps(vocab))
    assert main(["lm", "generate", "--model", str(tmp_path / "m"), "--length", "3"]) == 2
    assert "vocab.json: " in capsys.readouterr().err
