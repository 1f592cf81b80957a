"""Tests for lstmkit classify: pooling ignores padding, training learns, reload is exact, CLI, bad input."""

import json
import random

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import DataError, ModelFolderError
from lstmkit.tasks.classify.config import ClassifyConfig
from lstmkit.tasks.classify.metrics import classification_metrics
from lstmkit.tasks.classify.model import SequenceClassifier

POS, NEG, FILLER = (
    ["good", "great", "fine", "love"],
    ["bad", "awful", "hate", "poor"],
    ["the", "a", "movie", "was", "it"],
)


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


TINY = dict(
    embed_size=16, hidden_size=16, bidirectional=True, dropout=0.0, batch_size=16, lr=0.02, device="cpu", patience=0
)


def tiny_train(data, valid, out=None, seed=0, epochs=6, **settings):
    kw = {**TINY, "seed": seed, "epochs": epochs, **settings}
    return lstmkit.train("classify", data, valid, out, quiet=True, **kw)


def net(vocab_size=20, num_classes=3, unk_id=None, **settings):
    cfg = ClassifyConfig().build(settings)
    return SequenceClassifier(
        cfg, {"vocab_size": vocab_size, "num_classes": num_classes, "pad_id": 0, "unk_id": unk_id}
    )


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooling_ignores_padding(pooling, bidirectional):
    torch.manual_seed(0)
    m = net(embed_size=8, hidden_size=8, num_layers=2, bidirectional=bidirectional, pooling=pooling).eval()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0], [1, 2, 3, 4, 9, 8]])
    alone = m(short, torch.tensor([3]))
    batched = m(padded, torch.tensor([3, 6]))
    torch.testing.assert_close(batched[0:1], alone, rtol=1e-5, atol=1e-6)


def test_word_dropout_replaces_real_tokens_with_unk_in_training_only():
    m = net(vocab_size=50, unk_id=1, embed_size=4, hidden_size=4, word_dropout=0.3)
    x = torch.randint(2, 50, (64, 40))
    x[:, 30:] = 0  # padding
    torch.manual_seed(0)
    dropped = m.drop_words(x)
    hit = dropped != x
    assert (dropped[hit] == 1).all()  # only ever <unk>
    assert not hit[:, 30:].any()  # padding untouched
    assert 0.25 < hit[:, :30].float().mean().item() < 0.35  # about p of the real tokens
    assert torch.equal(m.eval().drop_words(x), x)  # eval: identity
    zero = net(vocab_size=50, unk_id=1, embed_size=4, hidden_size=4)
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
    assert res.metrics["valid"]["accuracy"] >= 0.9
    assert set(res.metrics["valid"]["per_class"]) == {"meh", "neg", "pos"}
    loaded = lstmkit.load(tmp_path / "m")
    texts = [t for t, _ in valid]
    assert np.array_equal(loaded.predict_proba(texts), res.predictor.predict_proba(texts))
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert saved["valid"]["accuracy"] == res.metrics["valid"]["accuracy"] == loaded.metrics["valid"]["accuracy"]
    assert saved["training"]["best_epoch"] == res.best_epoch >= 1
    again = tiny_train(train, valid, seed=0)
    assert again.metrics == res.metrics
    # one input, one output, in order: a string is one text, an empty text gives an empty output
    one = loaded.predict("a great movie")
    assert len(one) == 1 and one[0]["label"] == "pos"
    many = loaded.predict(["good", "", "bad movie"])
    assert [o["label"] for o in many] == ["pos", None, "neg"] and many[1]["probabilities"] == {}
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
    res = lstmkit.train(
        "classify",
        path,
        None,
        tmp_path / "n",
        quiet=True,
        input="numeric",
        epochs=8,
        batch_size=16,
        lr=0.02,
        device="cpu",
        patience=0,
        embed_size=8,
        hidden_size=16,
        pooling="mean",
        dropout=0.0,
    )
    assert res.metrics["valid"]["accuracy"] >= 0.8
    loaded = lstmkit.load(tmp_path / "n")
    assert loaded.predict(["5 4 3"])[0]["label"] == "up"
    assert np.array_equal(loaded.predict_proba(["1 -2 0.5"]), res.predictor.predict_proba(["1 -2 0.5"]))


def test_bpe_and_pretrained_frozen_embeddings(tmp_path):
    train, valid = sentiment(80, 3), sentiment(20, 4)
    one_epoch = dict(epochs=1, batch_size=16, device="cpu")
    bpe = lstmkit.train(
        "classify",
        train,
        valid,
        tmp_path / "b",
        quiet=True,
        tokenizer="bpe",
        bpe_vocab_size=60,
        embed_size=8,
        hidden_size=8,
        **one_epoch,
    )
    assert np.array_equal(
        lstmkit.load(tmp_path / "b").predict_proba(["great movie"]), bpe.predictor.predict_proba(["great movie"])
    )
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 0 0 0\nbad -1 0 0 0\nmovie 0 1 0 0\n")
    res = lstmkit.train(
        "classify",
        train,
        valid,
        None,
        quiet=True,
        embeddings=str(glove),
        freeze_embeddings=True,
        hidden_size=8,
        **one_epoch,
    )
    model, vocab = res.predictor.model, res.predictor.encoder.vocab
    assert model.embed.weight.shape[1] == 4 == res.predictor.config.embed_size  # the file's dimension
    assert model.embed.weight[vocab.index("good")].tolist() == [1.0, 0.0, 0.0, 0.0]  # frozen: unchanged


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
    assert m == lstmkit.load(out).evaluate(dv)  # the CLI prints what the Python API returns
    assert {"macro_f1", "per_class", "confusion_matrix"} <= set(m)
    png = tmp_path / "cm.png"
    assert main(["classify", "evaluate", "--model", str(out), "--data", str(dv), "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000 and "accuracy" in capsys.readouterr().out
    texts = tmp_path / "p.txt"
    texts.write_text("a great movie\n\nawful\n")
    assert main(["classify", "predict", "--model", str(out), "--data", str(texts), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and rows[1] == {"label": None, "probabilities": {}}  # the empty line keeps its place
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-6 for r in (rows[0], rows[2]))
    assert main(["classify", "predict", "--model", str(out), "--data", str(texts)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("text,label,p_") and [x.split(",")[0] for x in lines[1:]] == [
        "a great movie",
        "",
        "awful",
    ]


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
    test = write_tsv(tmp_path / "test.tsv", [("good", "pos"), ("fine", "surprised")])
    with pytest.raises(DataError, match="line 3: label 'surprised'"):
        res.predictor.evaluate(test)
