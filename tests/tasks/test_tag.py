"""The tag task end to end on tiny synthetic data: train, reload, evaluate, predict, CLI, bad input,
and the decoding maths (entity confidences against brute force)."""

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.data.conll import Sentence, check_scheme, read_conll
from lstmkit.errors import DataError, LstmkitError, ModelFolderError
from lstmkit.io import to_jsonable
from lstmkit.nn import LSTM
from lstmkit.nn.crf import CRF, allowed_transitions
from lstmkit.tasks.tag.decode import _CrfScores, continuations
from lstmkit.tasks.tag.model import BiLSTM

PER = [["John"], ["Mary", "Smith"], ["Anna", "Lee"], ["Peter"], ["Olga", "Ivanova", "Petrova"]]
LOC = [["Paris"], ["New", "York"], ["Berlin"], ["Rio", "de", "Janeiro"], ["Oslo"]]
FILL = ["the", "a", "visited", "met", "in", "yesterday", "and", "said", "that", "we", "saw", "near"]
ONE = ["--threads", "1"]  # the CLI would otherwise set torch to every core
TINY = dict(embed_size=16, char_dim=8, char_hidden=8, hidden_size=16, dropout=0.1, unk_replace=0.0, device="cpu")


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
    """A tiny model trained once through the CLI on IOB1 data (old spelling --word-dim refused first)."""
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
        "--threads",
        "1",
    ]
    assert main([*args, "--word-dim", "16"]) == 2  # renamed: a one-line hint, nothing trained
    assert not out.exists()
    assert main([*args, "--embed-size", "16"]) == 0
    return d, out


def test_learns_and_writes_a_model_folder(trained, capsys):
    d, out = trained
    for name in ("config.json", "model.safetensors", "words.json", "chars.json", "tags.json", "metrics.json"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["f1"] > 0.9 and metrics["valid"]["accuracy"] > 0.95
    assert set(metrics["valid"]["per_type"]) == {"PER", "LOC"}
    assert metrics["training"]["f1"] >= metrics["valid"]["f1"] - 1e-9  # the best epoch's own validation F1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "tag" and cfg["config"]["scheme"] == "IOB1" and cfg["dims"]["scheme"] == "IOBES"
    assert cfg["config"]["embed_size"] == 16 and cfg["config"]["lstm"]["hidden_size"] == 16
    # --monitor auto is resolved in the saved config: entity F1 for chunk tags
    assert cfg["config"]["train"]["monitor"] == "f1" and cfg["config"]["train"]["monitor_mode"] == "max"
    assert "S-PER" in cfg["dims"]["tags"] and "E-LOC" in cfg["dims"]["tags"]


def test_reload_gives_the_saved_metrics_and_predictions_in_the_input_scheme(trained):
    d, out = trained
    p = lstmkit.load(out)
    saved = json.loads((out / "metrics.json").read_text())["valid"]
    assert p.evaluate(d / "valid.txt") == saved  # the in-memory predictor's metrics, reproduced after loading
    sents = read_conll(d / "valid.txt")
    a = p.predict([s.tokens for s in sents], nbest=3, confidence=True)
    check_scheme([Sentence(x.tokens, x.tags, list(range(len(x.tags)))) for x in a], "IOB1")
    assert a[0].nbest[0].tags == a[0].tags  # the best of the n-best is the Viterbi path
    probs = [alt.probability for alt in a[0].nbest]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert all(0 < c <= 1 for x in a for c in x.confidence)
    # entities follow the tags; the probability of an exact span is at most each of its tokens' marginals
    for x in a:
        assert [(e.label, e.start, e.end) for e in x.entities] == [
            (t.split("-")[1], s.start, s.end + 1) for s in _spans(x.tags) for t in [x.tags[s.start]]
        ]
        for e in x.entities:
            assert e.text == " ".join(x.tokens[e.start : e.end])
            assert 0 < e.confidence <= min(x.confidence[e.start : e.end]) + 1e-6


def _spans(tags):
    from lstmkit.data.conll import tags_to_spans

    return tags_to_spans(tags)


def test_predict_inputs_one_output_each_in_order(trained, tmp_path):
    _, out = trained
    p = lstmkit.load(out)
    one = p.predict("we met Mary Smith in Paris .")  # a string is ONE sentence, whitespace-tokenised
    assert len(one) == 1 and one[0].tokens == "we met Mary Smith in Paris .".split()
    assert one[0].tags == ["O", "O", "I-PER", "I-PER", "O", "I-LOC", "O"]
    assert [(e.text, e.label, e.start, e.end) for e in one[0].entities] == [
        ("Mary Smith", "PER", 2, 4),
        ("Paris", "LOC", 5, 6),
    ]
    many = p.predict(["John said that", "", ["we", "saw", "Oslo"], "   "])
    assert [m.tokens for m in many] == [["John", "said", "that"], [], ["we", "saw", "Oslo"], []]
    assert many[1].tags == [] and many[1].entities == [] and many[3].tags == []
    assert many[2].tags[2] == "I-LOC"
    f = tmp_path / "in.txt"
    f.write_text("John said that\n\nwe saw Oslo\n", encoding="utf-8")
    from_file = p.predict(f)
    assert to_jsonable(from_file) == to_jsonable([many[0], many[1], many[2]])
    with pytest.raises(DataError, match="input 1: expected a sentence"):
        p.predict([3])


def test_cli_evaluate_json_and_predict(trained, tmp_path, capsys):
    d, out = trained
    capsys.readouterr()
    assert main(["tag", "evaluate", "--model", str(out), "--data", str(d / "valid.txt"), "--json", *ONE]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m == lstmkit.load(out).evaluate(d / "valid.txt") and m["f1"] > 0.9 and m["entities"] > 0
    assert main(["tag", "evaluate", "--model", str(out), "--data", str(d / "valid.txt"), *ONE]) == 0
    assert capsys.readouterr().out.startswith("entity F1 ")
    raw = tmp_path / "raw.txt"
    raw.write_text("we met Mary Smith in Paris .\n\nJohn said that\n", encoding="utf-8")
    assert main(["tag", "predict", "--model", str(out), "--data", str(raw), "--confidence", *ONE]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[:7]]
    assert [r[0] for r in rows] == "we met Mary Smith in Paris .".split()
    assert [r[1] for r in rows] == ["O", "O", "I-PER", "I-PER", "O", "I-LOC", "O"]
    assert all(0 < float(r[2]) <= 1 for r in rows)
    assert lines[7:9] == ["", ""] and lines[9].split()[0] == "John"  # the empty line: an empty block in place
    assert main(["tag", "predict", "--model", str(out), "--data", str(raw), "--json", *ONE]) == 0
    outs = json.loads(capsys.readouterr().out)
    assert len(outs) == 3 and outs[1] == {"tokens": [], "tags": [], "entities": [], "confidence": None, "nbest": None}
    conll_out = tmp_path / "pred.txt"
    args = ["--data", str(d / "valid.txt"), "--format", "conll", "--nbest", "2", "--output", str(conll_out)]
    assert main(["tag", "predict", "--model", str(out), *args, *ONE]) == 0
    lines = conll_out.read_text().splitlines()
    assert lines[:2] == ["-DOCSTART- -X- O", ""]  # carried through in place
    first = [x for x in lines[2:] if x][:2]
    assert first[0].startswith("# nbest probabilities:") and len(first[1].split()) == 5  # 3 columns + 2 paths


def test_conllu_lines_that_are_not_words_are_carried_in_place(trained, tmp_path, capsys):
    _, out = trained
    word = "{}\t{}\t_\t_\t_\t_\t_\t_\t_\t_"
    rows = [
        "# sent_id = 1",
        word.format(1, "Mary"),
        word.format("2-3", "Smithsaw"),
        word.format(2, "Smith"),
        word.format(3, "saw"),
        word.format("3.1", "x"),
        word.format(4, "Paris"),
        "",
        "# sent_id = 2",
        "",
        word.format(1, "Oslo"),
    ]
    f = tmp_path / "in.conllu"
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["tag", "predict", "--model", str(out), "--data", str(f), *ONE]) == 0  # auto: .conllu
    got = capsys.readouterr().out.splitlines()
    assert got[0] == "# sent_id = 1" and got[2] == rows[2] and got[5] == rows[5] and got[7:9] == ["", "# sent_id = 2"]
    assert [line.split("\t")[-1] for line in (got[1], got[3], got[4], got[6])] == ["I-PER", "I-PER", "O", "I-LOC"]
    assert got[9] == "" and got[10].split("\t")[:2] == ["1", "Oslo"] and got[10].split("\t")[-1] == "I-LOC"
    outs = lstmkit.load(out).predict(f)
    assert [o.tokens for o in outs] == [["Mary", "Smith", "saw", "Paris"], [], ["Oslo"]]


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
    assert main(["tag", "train", "--data", str(f), "--out", str(tmp_path / "m"), "--quiet", *ONE]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def _pos_data(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    pos = {"the": "DET", "a": "DET", "cat": "NOUN", "dog": "NOUN", "sees": "VERB", "eats": "VERB", ".": "PUNCT"}
    data = []
    for _ in range(n):
        toks = [
            rng.choice(["the", "a"]),
            rng.choice(["cat", "dog"]),
            rng.choice(["sees", "eats"]),
            rng.choice(["the", "a"]),
            rng.choice(["cat", "dog"]),
            ".",
        ]
        data.append((toks, [pos[t] for t in toks]))
    return data


def test_same_seed_same_metrics_and_no_crf_pos(tmp_path):
    data = _pos_data(30, 3)
    kw = dict(TINY, crf=False, epochs=2, batch_size=8, lr=0.01)
    r1 = lstmkit.train("tag", data[:20], data[20:], tmp_path / "pos", quiet=True, **kw)
    r2 = lstmkit.train("tag", data[:20], data[20:], quiet=True, **kw)
    assert r1.metrics == r2.metrics
    assert "f1" not in r1.metrics["valid"] and r1.metrics["valid"]["accuracy"] > 0.5
    cfg = r1.predictor.config
    assert cfg.scheme == "none" and cfg.train.monitor == "accuracy"  # auto -> accuracy for plain labels
    loaded = lstmkit.load(tmp_path / "pos")
    sents = [t for t, _ in data[20:]]
    assert to_jsonable(loaded.predict(sents, confidence=True)) == to_jsonable(
        r1.predictor.predict(sents, confidence=True)
    )
    assert loaded.predict(["the cat"])[0].entities is None  # plain labels have no entities
    with pytest.raises(LstmkitError, match="needs a CRF"):
        r1.predictor.predict([["the", "cat"]], nbest=2)
    with pytest.raises(LstmkitError, match="nbest"):
        r1.predictor.predict("the cat", nbest=0)


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


def test_trace_gates_for_inspect(trained, tmp_path):
    d, out = trained
    p = lstmkit.load(out)
    sample = p.inspect_sample(None, 0)
    assert sample == read_conll(d / "valid.txt")[0].tokens  # saved at training time
    gates = p.trace_gates(sample)
    assert len(gates) == 2 and gates[0].i.shape == (1, len(sample), 16)
    assert p.step_labels(sample) == sample
    png = tmp_path / "g.png"
    assert main(["inspect", "--model", str(out), "--output", str(png), "--direction", "1", *ONE]) == 0
    assert png.stat().st_size > 1000


def test_wrong_tag_column_and_unknown_scheme_option(tmp_path):
    f = _write_conll(tmp_path / "t.txt", 5, 0)
    with pytest.raises(DataError, match="tag column 7 is out of range"):
        lstmkit.train("tag", f, tag_column=7, epochs=1, quiet=True, **TINY)
    with pytest.raises(DataError, match="not IOB2"):
        lstmkit.train("tag", f, scheme="IOB2", epochs=1, quiet=True, **TINY)
    with pytest.raises(LstmkitError, match=r"char_kernel \(--char-kernel\) must be odd"):
        lstmkit.train("tag", f, char_kernel=4, **TINY)


def test_pretrained_embeddings_file_frozen(tmp_path):
    f = _write_conll(tmp_path / "t.txt", 12, 5)
    vectors = {"paris": [0.5] * 6, "john": [-0.25] * 6, "the": [0.125] * 6}
    emb = tmp_path / "vec.txt"
    emb.write_text("3 6\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()), encoding="utf-8")
    r = lstmkit.train(
        "tag",
        f,
        quiet=True,
        embeddings=str(emb),
        freeze_embeddings=True,
        model_scheme="IOB2",
        epochs=1,
        batch_size=4,
        **TINY,
    )
    p = r.predictor
    assert p.config.embed_size == 6 and p.model.words.weight.shape[1] == 6 and not p.model.words.weight.requires_grad
    assert p.dims["scheme"] == "IOB2" and "B-PER" in p.tags and p.scheme == "IOB1"
    assert not p.model.crf.allowed_trans[p.tags.index("O"), p.tags.index("I-PER")]
    for w, v in vectors.items():
        assert torch.allclose(p.model.words.weight[p.encoder.words.index(w)], torch.tensor(v))
    bad = tmp_path / "bad.txt"
    bad.write_text("paris 1 2 3\njohn 1 2\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        lstmkit.train("tag", f, embeddings=str(bad), epochs=1, quiet=True, **TINY)


def test_bad_transforms_are_model_folder_errors_naming_the_file(tmp_path):
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "tag"
    for name, change in (
        ("tags.json", lambda d: {"tags": d["tags"][:-1]}),
        ("words.json", lambda d: {**d, "tokens": d["tokens"][:-1]}),
        ("chars.json", lambda d: {"nothing": 1}),
    ):
        folder = tmp_path / name
        folder.mkdir()
        for src in fixture.iterdir():
            (folder / src.name).write_bytes(src.read_bytes())
        (folder / name).write_text(json.dumps(change(json.loads((fixture / name).read_text()))))
        with pytest.raises(ModelFolderError, match=f"{folder}/{name}: "):
            lstmkit.load(folder)


@pytest.mark.parametrize("tags", [["O", "B-X", "I-X", "B-Y", "I-Y"], ["O", "B-X", "I-X", "E-X", "S-X"]])
def test_entity_confidence_is_the_probability_of_the_exact_span(tags):
    """Against brute force over every tag path: p(y_s..e = the span's tags, y_{e+1} does not continue it)."""
    scheme = "IOBES" if "S-X" in tags else "IOB2"
    torch.manual_seed(1)
    k, n = len(tags), 4
    crf = CRF(k, allowed_transitions(tags, scheme))
    with torch.no_grad():
        crf.transitions.normal_()
    em = torch.randn(2, n, k)
    mask = torch.tensor([[True] * n, [True, True, True, False]])
    scores = _CrfScores(crf, em, mask)
    cont = continuations(tags)
    for b, length in ((0, n), (1, n - 1)):
        paths = list(itertools.product(range(k), repeat=length))
        ys = torch.tensor(paths)
        with torch.no_grad():
            full = torch.ones(len(paths), length, dtype=torch.bool)
            probs = crf(em[b : b + 1, :length].expand(len(paths), -1, -1), ys, full).double().exp().numpy()
        path = crf.decode(em[b : b + 1], mask[b : b + 1])[0][0, :length].tolist()
        for s, e in [(0, 0), (1, 2), (0, length - 1), (length - 1, length - 1)]:
            hit = [
                all(p[t] == path[t] for t in range(s, e + 1)) and (e + 1 >= length or not cont[path[e]][p[e + 1]])
                for p in paths
            ]
            want = float(probs[np.array(hit)].sum())
            assert scores.span(b, length, path, s, e, cont[path[e]]) == pytest.approx(want, rel=1e-4, abs=1e-9)
        marg = scores.marginals(b, length)
        assert np.allclose(marg.sum(1), 1, atol=1e-5)
