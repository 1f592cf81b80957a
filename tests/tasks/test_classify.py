"""Tests for lstmkit classify: pooling ignores padding, training learns, reload is exact, CLI, bad input."""

import json
import random

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks import classify as C
from lstmkit.tasks.classify_metrics import classification_metrics
from lstmkit.tasks.classify_model import ClassifierShape, SequenceClassifier
from lstmkit.train import TrainConfig

POS, NEG, FILLER = (
    ["good", "great", "fine", "love"],
    ["bad", "awful", "hate", "poor"],
    ["the", "a", "movie", "was", "it"],
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sentiment(n, seed):
    """Texts with one sentiment word among fillers; label pos/neg/meh (3 classes)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        y = rng.choice(["pos", "neg", "meh"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(1, 10))]
        if y != "meh":
            words.insert(rng.randrange(len(words) + 1), rng.choice(POS if y == "pos" else NEG))
        out.append((" ".join(words), y))
    return out


def tiny_train(data, valid, out=None, seed=0, epochs=6, **shape):
    kw = dict(embed_size=16, hidden_size=16, bidirectional=True, dropout=0.0)
    kw.update(shape)
    tcfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.02, quiet=True, device="cpu", seed=seed, patience=0)
    return C.train(data, valid, out, C.ClassifyConfig(), ClassifierShape(**kw), tcfg)


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooling_ignores_padding(pooling, bidirectional):
    torch.manual_seed(0)
    net = SequenceClassifier(
        ClassifierShape(
            vocab_size=20,
            embed_size=8,
            hidden_size=8,
            num_layers=2,
            bidirectional=bidirectional,
            pooling=pooling,
            num_classes=3,
        )
    ).eval()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0], [1, 2, 3, 4, 9, 8]])
    alone = net(short, torch.tensor([3]))
    batched = net(padded, torch.tensor([3, 6]))
    torch.testing.assert_close(batched[0:1], alone, rtol=1e-5, atol=1e-6)


def test_word_dropout_replaces_real_tokens_with_unk_in_training_only():
    shape = ClassifierShape(vocab_size=50, pad_id=0, unk_id=1, embed_size=4, hidden_size=4, word_dropout=0.3)
    net = SequenceClassifier(shape)
    x = torch.randint(2, 50, (64, 40))
    x[:, 30:] = 0  # padding
    torch.manual_seed(0)
    dropped = net.drop_words(x)
    hit = dropped != x
    assert (dropped[hit] == 1).all()  # only ever <unk>
    assert not hit[:, 30:].any()  # padding untouched
    assert 0.25 < hit[:, :30].float().mean().item() < 0.35  # about p of the real tokens
    assert torch.equal(net.eval().drop_words(x), x)  # eval: identity
    zero = SequenceClassifier(ClassifierShape(vocab_size=50, unk_id=1, embed_size=4, hidden_size=4))
    assert torch.equal(zero.train().drop_words(x), x)  # p = 0: identity


def test_metrics_by_hand():
    m = classification_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), labels=["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_learns_reloads_exactly_and_is_reproducible(tmp_path):
    train, valid = sentiment(240, 1), sentiment(60, 2)
    res = tiny_train(train, valid, tmp_path / "m")
    assert res.metrics["accuracy"] >= 0.9
    assert set(res.metrics["per_class"]) == {"meh", "neg", "pos"}
    loaded = lstmkit.load(tmp_path / "m")
    texts = [t for t, _ in valid]
    assert np.array_equal(loaded.predict_proba(texts), res.predictor.predict_proba(texts))
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["accuracy"] == res.metrics["accuracy"]
    again = tiny_train(train, valid, seed=0)
    assert again.metrics == res.metrics
    # gates for `lstmkit inspect`: one Gates per layer x direction, fields (1, T, H)
    sample = loaded.inspect_sample()
    gates = loaded.trace_gates(sample)
    assert len(gates) == 2 and gates[0].i.shape == (1, len(loaded.step_labels(sample)), 16)


def test_numeric_sequences_to_binary_label(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):
        seq = rng.normal(size=rng.integers(3, 12))
        rows.append((" ".join(f"{v:.3f}" for v in seq), "up" if seq.sum() > 0 else "down"))
    path = tmp_path / "num.tsv"
    path.write_text("sequence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    cfg = C.ClassifyConfig(input="numeric")
    tcfg = TrainConfig(epochs=8, batch_size=16, lr=0.02, quiet=True, device="cpu", patience=0)
    res = C.train(
        path,
        None,
        tmp_path / "n",
        cfg,
        ClassifierShape(embed_size=8, hidden_size=16, pooling="mean", dropout=0.0),
        tcfg,
    )
    assert res.metrics["accuracy"] >= 0.8
    loaded = lstmkit.load(tmp_path / "n")
    assert loaded.predict(["5 4 3"])[0]["label"] == "up"
    assert np.array_equal(loaded.predict_proba(["1 -2 0.5"]), res.predictor.predict_proba(["1 -2 0.5"]))


def test_bpe_and_pretrained_frozen_embeddings(tmp_path):
    train, valid = sentiment(80, 3), sentiment(20, 4)
    bpe = C.train(
        train,
        valid,
        tmp_path / "b",
        C.ClassifyConfig(tokenizer="bpe", bpe_vocab_size=60),
        ClassifierShape(embed_size=8, hidden_size=8),
        TrainConfig(epochs=1, batch_size=16, quiet=True, device="cpu"),
    )
    assert np.array_equal(
        lstmkit.load(tmp_path / "b").predict_proba(["great movie"]), bpe.predictor.predict_proba(["great movie"])
    )
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 0 0 0\nbad -1 0 0 0\nmovie 0 1 0 0\n")
    res = C.train(
        train,
        valid,
        None,
        C.ClassifyConfig(embeddings=str(glove), freeze_embeddings=True),
        ClassifierShape(hidden_size=8),
        TrainConfig(epochs=1, batch_size=16, quiet=True, device="cpu"),
    )
    net, vocab = res.predictor.model, res.predictor.encoder.vocab
    assert net.embed.weight.shape[1] == 4  # the file's dimension
    assert net.embed.weight[vocab.index("good")].tolist() == [1.0, 0.0, 0.0, 0.0]  # frozen: unchanged


def write_tsv(path, rows):
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    return path


def test_cli_train_evaluate_predict(tmp_path, capsys):
    tr, dv = write_tsv(tmp_path / "train.tsv", sentiment(100, 5)), write_tsv(tmp_path / "dev.tsv", sentiment(30, 6))
    out = tmp_path / "m"
    assert (
        main(
            [
                "classify",
                "train",
                "--data",
                str(tr),
                "--valid",
                str(dv),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--embed-size",
                "8",
                "--hidden-size",
                "8",
                "--pooling",
                "attention",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["classify", "evaluate", "--model", str(out), "--data", str(dv), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert 0 <= m["accuracy"] <= 1 and {"macro_f1", "per_class", "confusion_matrix"} <= set(m)
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    texts = tmp_path / "p.txt"
    texts.write_text("a great movie\nawful\n")
    assert main(["classify", "predict", "--model", str(out), "--data", str(texts), "--output-format", "jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in lines] == ["a great movie", "awful"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-6 for r in lines)


def test_cli_bad_input_exit_2(tmp_path, capsys):
    tr = write_tsv(tmp_path / "train.tsv", sentiment(20, 7))
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"sentence\tlabel\nfine\t1\nbad \xff\t0\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    cases = [
        (["--data", str(tr), "--label-column", "stars"], "column 'stars' not found"),
        (["--data", str(bad)], "line 3 is not valid UTF-8"),
        (["--data", str(empty)], "empty"),
    ]
    for args, msg in cases:
        assert main(["classify", "train", "--out", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


def test_mismatched_vocabulary_or_labels_is_a_model_folder_error(tmp_path):
    res = tiny_train(sentiment(40, 8), sentiment(10, 9), tmp_path / "m", epochs=1)
    vocab = json.loads((tmp_path / "m" / "vocab.json").read_text())
    vocab["tokens"] = vocab["tokens"][:-1]
    (tmp_path / "m" / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelFolderError, match="vocab.json"):
        lstmkit.load(tmp_path / "m")
    rows = [C.LabelledText("good", "surprised", 4)]
    with pytest.raises(DataError, match="line 4: label 'surprised'"):
        res.predictor.evaluate(rows, "test.tsv")
