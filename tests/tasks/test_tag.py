"""The tag task end to end on tiny synthetic data: train, reload, evaluate, predict, CLI, bad input."""

import json
import random
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.data.conll import check_scheme, read_conll
from lstmkit.errors import DataError
from lstmkit.nn import LSTM
from lstmkit.tasks.tag import TagConfig, default_train_config, load_predictor, train
from lstmkit.tasks.tag_model import BiLSTM

PER = [["John"], ["Mary", "Smith"], ["Anna", "Lee"], ["Peter"], ["Olga", "Ivanova", "Petrova"]]
LOC = [["Paris"], ["New", "York"], ["Berlin"], ["Rio", "de", "Janeiro"], ["Oslo"]]
FILL = ["the", "a", "visited", "met", "in", "yesterday", "and", "said", "that", "we", "saw", "near"]
TINY = dict(word_dim=16, char_dim=8, char_hidden=8, hidden_size=16, dropout=0.1, unk_replace=0.0)


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """Random fillers around one to three entities; tags in IOB1 (I- starts an entity)."""
    toks, tags = [], []
    for _ in range(rng.randint(1, 3)):
        for _ in range(rng.randint(0, 3)):
            toks.append(rng.choice(FILL))
            tags.append("O")
        typ, ent = rng.choice([("PER", rng.choice(PER)), ("LOC", rng.choice(LOC))])
        toks += ent
        tags += [f"I-{typ}"] * len(ent)
    toks.append(".")
    tags.append("O")
    return toks, tags


def _write_conll(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- O", ""]
    for _ in range(n):
        toks, tags = _sentence(rng)
        lines += [f"{t} X {g}" for t, g in zip(toks, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained once through the CLI on IOB1 data."""
    d = tmp_path_factory.mktemp("tag")
    tr, va = _write_conll(d / "train.txt", 80, 0), _write_conll(d / "valid.txt", 30, 1)
    out = d / "model"
    args = [
        "tag",
        "train",
        "--data",
        str(tr),
        "--valid",
        str(va),
        "--out",
        str(out),
        "--epochs",
        "8",
        "--batch-size",
        "8",
        "--lr",
        "0.01",
        "--word-dim",
        "16",
        "--char-dim",
        "8",
        "--char-hidden",
        "8",
        "--hidden-size",
        "16",
        "--dropout",
        "0.1",
        "--unk-replace",
        "0",
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    return d, out


def test_learns_and_writes_a_model_folder(trained):
    d, out = trained
    for name in ("config.json", "model.safetensors", "words.json", "chars.json", "tags.json", "metrics.json"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] > 0.9 and metrics["accuracy"] > 0.95
    assert set(metrics["per_type"]) == {"PER", "LOC"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "tag" and cfg["data"]["scheme"] == "IOB1" and cfg["model"]["scheme"] == "IOBES"


def test_reload_gives_identical_predictions_in_the_input_scheme(trained):
    d, out = trained
    sents = read_conll(d / "valid.txt")
    p1 = lstmkit.load(out)
    p2 = load_predictor(out)
    a = p1.predict([s.tokens for s in sents], nbest=3, confidence=True)
    b = p2.predict([s.tokens for s in sents], nbest=3, confidence=True)
    assert a == b
    check_scheme([type(sents[0])(x.tokens, x.tags, list(range(len(x.tags)))) for x in a], "IOB1")
    assert a[0].nbest[0][0] == a[0].tags  # the best of the n-best is the Viterbi path
    probs = [p for _, p in a[0].nbest]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert all(0 < c <= 1 for x in a for c in x.confidence)


def test_cli_evaluate_json_and_predict(trained, tmp_path, capsys):
    d, out = trained
    capsys.readouterr()
    assert main(["tag", "evaluate", "--model", str(out), "--data", str(d / "valid.txt"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["f1"] > 0.9 and m["entities"] > 0
    raw = tmp_path / "raw.txt"
    raw.write_text("we met Mary Smith in Paris .\n\nJohn said that\n", encoding="utf-8")
    assert main(["tag", "predict", "--model", str(out), "--data", str(raw), "--confidence"]) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert len(blocks) == 2
    rows = [line.split() for line in blocks[0].splitlines()]
    assert [r[0] for r in rows] == "we met Mary Smith in Paris .".split()
    assert [r[1] for r in rows] == ["O", "O", "I-PER", "I-PER", "O", "I-LOC", "O"]
    assert all(0 < float(r[2]) <= 1 for r in rows)
    conll_out = tmp_path / "pred.txt"
    assert (
        main(
            [
                "tag",
                "predict",
                "--model",
                str(out),
                "--data",
                str(d / "valid.txt"),
                "--format",
                "conll",
                "--nbest",
                "2",
                "--output",
                str(conll_out),
            ]
        )
        == 0
    )
    first = [x for x in conll_out.read_text().splitlines() if x][:2]
    assert first[0].startswith("# nbest probabilities:") and len(first[1].split()) == 5  # 3 columns + 2 paths


@pytest.mark.parametrize(
    "text, message",
    [
        ("a X O\nb O\n", "f.txt:2: expected 3 columns"),
        ("a B-PER\nb O\n\nc I-LOC\n", "mixed tag schemes"),
        ("\n\n", "empty file"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, text, message):
    f = tmp_path / "f.txt"
    f.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(["tag", "train", "--data", str(f), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_same_seed_same_metrics_and_no_crf_pos(tmp_path):
    rng = random.Random(3)
    pos = {"the": "DET", "a": "DET", "cat": "NOUN", "dog": "NOUN", "sees": "VERB", "eats": "VERB", ".": "PUNCT"}
    data = []
    for _ in range(30):
        toks = [
            rng.choice(["the", "a"]),
            rng.choice(["cat", "dog"]),
            rng.choice(["sees", "eats"]),
            rng.choice(["the", "a"]),
            rng.choice(["cat", "dog"]),
            ".",
        ]
        data.append((toks, [pos[t] for t in toks]))
    cfg = TagConfig(crf=False, **TINY)
    tcfg = default_train_config(epochs=2, batch_size=8, lr=0.01, quiet=True, device="cpu")
    r1 = train(data[:20], data[20:], config=cfg, train_config=tcfg)
    r2 = train(data[:20], data[20:], config=cfg, train_config=tcfg)
    assert r1.metrics == r2.metrics
    assert "f1" not in r1.metrics and r1.metrics["accuracy"] > 0.5
    assert r1.predictor.scheme == "none"
    with pytest.raises(lstmkit.errors.LstmkitError, match="needs a CRF"):
        r1.predictor.predict([["the", "cat"]], nbest=2)


def test_bilstm_matches_a_bidirectional_lstm_with_lengths():
    torch.manual_seed(0)
    ref = LSTM(5, 4, num_layers=2, batch_first=True, bidirectional=True)
    ours = BiLSTM(5, 4, num_layers=2)
    state = {}
    for k in range(2):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            state[f"fwd.{k}.{name}_l0"] = getattr(ref, f"{name}_l{k}")
            state[f"bwd.{k}.{name}_l0"] = getattr(ref, f"{name}_l{k}_reverse")
    ours.load_state_dict(state)
    x, lengths = torch.randn(3, 6, 5), torch.tensor([6, 2, 4])
    want, _ = ref(x, lengths=lengths)
    got = ours(x, lengths)
    mask = (torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(2)
    assert torch.allclose(got * mask, want * mask, atol=1e-5)
    out, gates = ours(x, lengths, return_gates=True)
    assert len(gates) == 4 and gates[1].o.shape == (3, 6, 4)
    assert torch.allclose(out * mask, want * mask, atol=1e-5)


def test_trace_gates_for_inspect(trained):
    _, out = trained
    p = lstmkit.load(out)
    sample = p.inspect_sample(None, 0)
    gates = p.trace_gates(sample)
    assert len(gates) == 2 * p.num_directions // 2 and gates[0].i.shape == (1, len(sample), 16)
    assert p.step_labels(sample) == sample


def test_wrong_tag_column_and_unknown_scheme_option(tmp_path):
    f = _write_conll(tmp_path / "t.txt", 5, 0)
    with pytest.raises(DataError, match="tag column 7 is out of range"):
        train(f, config=TagConfig(tag_column=7, **TINY), train_config=default_train_config(epochs=1, quiet=True))
    with pytest.raises(DataError, match="not IOB2"):
        train(f, config=TagConfig(scheme="IOB2", **TINY), train_config=default_train_config(epochs=1, quiet=True))


def test_pretrained_embeddings_file_frozen(tmp_path):
    f = _write_conll(tmp_path / "t.txt", 12, 5)
    vectors = {"paris": [0.5] * 6, "john": [-0.25] * 6, "the": [0.125] * 6}
    emb = tmp_path / "vec.txt"
    emb.write_text("3 6\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()), encoding="utf-8")
    cfg = TagConfig(embeddings=str(emb), freeze_embeddings=True, model_scheme="IOB2", **TINY)
    r = train(f, config=cfg, train_config=default_train_config(epochs=1, batch_size=4, quiet=True, device="cpu"))
    p = r.predictor
    assert p.model.shape.word_dim == 6 and not p.model.words.weight.requires_grad
    assert p.model.shape.scheme == "IOB2" and "B-PER" in p.tags and p.scheme == "IOB1"
    assert not p.model.crf.allowed_trans[p.tags.index("O"), p.tags.index("I-PER")]
    for w, v in vectors.items():
        assert torch.allclose(p.model.words.weight[p.encoder.words.index(w)], torch.tensor(v))
    bad = tmp_path / "bad.txt"
    bad.write_text("paris 1 2 3\njohn 1 2\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        train(f, config=TagConfig(embeddings=str(bad), **TINY), train_config=default_train_config(epochs=1, quiet=True))
