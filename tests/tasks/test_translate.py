"""Translation: decoding (greedy, batched beam, masking), training with BLEU selection, save/load, the
input forms (TSV, file pairs, PREFIX.lang, in-memory pairs), predict outputs, CLI."""

import io
import json
import random

import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.errors import DataError, LstmkitError
from lstmkit.io import dumps_json
from lstmkit.tasks.translate.config import TranslateConfig
from lstmkit.tasks.translate.data import fold_inputs, read_pairs
from lstmkit.tasks.translate.decode import DecodeOptions, beam_decode, greedy_decode, max_lengths
from lstmkit.tasks.translate.model import Seq2Seq, seq2seq_loss

LEX = {
    "der": "the",
    "ein": "a",
    "hund": "dog",
    "katze": "cat",
    "mann": "man",
    "frau": "woman",
    "sieht": "sees",
    "jagt": "chases",
    "mag": "likes",
    "rote": "red",
    "kleine": "small",
    "große": "big",
}
# a toy word-for-word task, learned in a few epochs (hidden 16 per direction = the old hidden 32)
SMALL = dict(
    tokenizer="whitespace",
    vocab_size=100,
    embed_size=16,
    hidden_size=16,
    dropout=0.0,
    label_smoothing=0.0,
    batch_size=32,
    lr=0.01,
    patience=3,
    device="cpu",
    seed=0,
)


def _corpus(n, seed):
    r = random.Random(seed)

    def phrase():
        adj = [r.choice(["rote", "kleine", "große"])] if r.random() < 0.5 else []
        return [r.choice(["der", "ein"])] + adj + [r.choice(["hund", "katze", "mann", "frau"])]

    src = [phrase() + [r.choice(["sieht", "jagt", "mag"])] + phrase() for _ in range(n)]
    return [" ".join(s) for s in src], [" ".join(LEX[w] for w in s) for s in src]


def _write_pair(folder, name, n, seed):
    de, en = _corpus(n, seed)
    (folder / f"{name}.de").write_text("\n".join(de) + "\n", encoding="utf-8")
    (folder / f"{name}.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    return folder / f"{name}.de", folder / f"{name}.en"


def _model(kind="general", layers=2, seed=0):
    torch.manual_seed(seed)
    cfg = TranslateConfig().build(embed_size=8, hidden_size=6, num_layers=layers, dropout=0.0, attention=kind)
    return Seq2Seq(cfg, {"src_vocab": 23, "tgt_vocab": 19, "pad_id": 0}).double().eval()


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1])
    src = torch.randint(4, 23, (4, 7), generator=g)
    for i, n in enumerate(lengths.tolist()):
        src[i, n:] = 0
    return src, lengths


def _stdin(text):
    return io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8")


# ------------------------------------------------------------------------------------ settings
def test_hidden_size_is_per_direction_and_the_encoder_always_bidirectional(tmp_path, capsys):
    cfg = TranslateConfig()
    assert (cfg.lstm.hidden_size, cfg.embed_size, cfg.vocab_size, cfg.lstm.dropout) == (256, 256, 8000, 0.3)
    assert (cfg.attention, cfg.tie_embeddings, cfg.label_smoothing, cfg.valid_beam) == ("general", True, 0.1, 1)
    assert (cfg.train.monitor, cfg.train.monitor_mode, cfg.train.batch_size, cfg.train.patience) == (
        "bleu",
        "max",
        64,
        3,
    )
    model = _model(layers=2)  # hidden_size 6: encoder 6 per direction, memory and decoder 12
    assert model.encoder.bidirectional and model.encoder.weight_hh_l0.shape == (4 * 6, 6)
    assert model.encoder.weight_ih_l1.shape == (4 * 6, 12)  # layer 2 reads both directions
    assert not model.decoder.bidirectional and model.decoder.weight_hh_l0.shape == (4 * 12, 12)
    assert model.bridge_h.weight.shape == (12, 12)
    with pytest.raises(LstmkitError, match="bidirectional"):
        lstmkit.train("translate", [("a", "b")], bidirectional=False)
    (tmp_path / "p.tsv").write_text("ein hund\ta dog\n", encoding="utf-8")
    base = ["translate", "train", "--data", str(tmp_path / "p.tsv"), "--out", str(tmp_path / "m")]
    assert main([*base, "--no-bidirectional"]) == 2
    assert main([*base, "--emb-size", "8"]) == 2
    assert "--emb-size is now --embed-size" in capsys.readouterr().err
    assert main([*base, "--monitor", "accuracy"]) == 2
    assert "--monitor" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_nbest_above_beam_is_a_one_line_error(capsys):
    with pytest.raises(LstmkitError, match=r"nbest \(--nbest\) must be <= --beam \(2\), got 3"):
        lstmkit.tasks.get_spec("translate").predict().build(beam=2, nbest=3)


# ------------------------------------------------------------------------------------ inputs
def test_the_input_forms_read_the_same_pairs(tmp_path):
    de, en = _write_pair(tmp_path, "train", 6, 0)
    src, tgt = de.read_text(encoding="utf-8").split("\n")[:6], en.read_text(encoding="utf-8").split("\n")[:6]
    tsv = tmp_path / "train.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in zip(src, tgt)) + "\n \t x\n", encoding="utf-8")
    from_tsv, _ = read_pairs(str(tsv))
    from_files, _ = read_pairs((de, en))
    from_list, _ = read_pairs(list(zip(src, tgt)))
    assert from_tsv.sources == from_files.sources == from_list.sources == src
    assert from_tsv.targets == from_files.targets == from_list.targets == tgt
    assert from_tsv.skipped_empty == 2  # the blank line and the pair with an empty source
    (tmp_path / "bad.tsv").write_text("ein hund\ta dog\nkein tab hier\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv: line 2: expected source<TAB>target"):
        read_pairs(str(tmp_path / "bad.tsv"))
    with pytest.raises(DataError, match="item 1 is not a"):
        read_pairs([("only one side",)])


def test_command_line_forms_fold_into_data_and_valid(tmp_path, capsys):
    prefix = str(tmp_path / "train")
    de, _ = _write_pair(tmp_path, "train", 5, 0)
    (tmp_path / "train.fr").write_text(de.read_text(encoding="utf-8"), encoding="utf-8")
    none = {"source": None, "target": None, "valid_source": None, "valid_target": None}
    langs = {"src_lang": None, "tgt_lang": None}
    assert fold_inputs(prefix, None, {**none, **langs}) == ((f"{prefix}.de", f"{prefix}.en"), None)
    assert fold_inputs(prefix, prefix, {**none, "src_lang": "fr", "tgt_lang": None})[1] == (
        f"{prefix}.fr",
        f"{prefix}.en",
    )
    assert fold_inputs(None, None, {**none, **langs, "source": "a", "target": "b"}) == (("a", "b"), None)
    with pytest.raises(DataError, match="must be given together"):
        fold_inputs(None, None, {**none, **langs, "source": "a"})
    with pytest.raises(DataError, match=r"not found \(nor .*nope\.de"):
        fold_inputs(str(tmp_path / "nope"), None, {**none, **langs})
    # the README's form, checked by a dry run
    argv = [
        "translate",
        "train",
        "--data",
        prefix,
        "--valid",
        prefix,
        "--src-lang",
        "fr",
        "--tgt-lang",
        "en",
        "--out",
        str(tmp_path / "m"),
        "--dry-run",
    ]
    assert main(argv) == 0
    paths = json.loads(capsys.readouterr().out)["paths"]
    assert paths["data"] == [f"{prefix}.fr", f"{prefix}.en"] and paths["valid"] == paths["data"]


# ------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("kind", ["bahdanau", "general", "dot"])
def test_beam_one_equals_greedy(kind):
    model, (src, lengths) = _model(kind), _batch()
    greedy = greedy_decode(model, src, lengths, DecodeOptions(beam=1))
    beam = beam_decode(model, src, lengths, DecodeOptions(beam=1))
    for g, b in zip(greedy, beam):
        assert g[0].ids == b[0].ids
        assert g[0].logprob == pytest.approx(b[0].logprob, abs=1e-9)
        assert torch.allclose(g[0].attention, b[0].attention)


@pytest.mark.parametrize("kind", ["bahdanau", "dot"])
def test_batched_beam_equals_per_sentence_beam(kind):
    model, (src, lengths) = _model(kind), _batch(1)
    opts = DecodeOptions(beam=4, nbest=3)
    batched = beam_decode(model, src, lengths, opts)
    for i, n in enumerate(lengths.tolist()):
        alone = beam_decode(model, src[i : i + 1, :n], lengths[i : i + 1], opts)[0]
        assert [h.ids for h in alone] == [h.ids for h in batched[i]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in batched[i]], abs=1e-9)


def test_padding_never_attended_and_nbest_ranked():
    model, (src, lengths) = _model("general"), _batch(2)
    limits = max_lengths(lengths, 2.0)
    for i, hyps in enumerate(beam_decode(model, src, lengths, DecodeOptions(beam=5, nbest=5))):
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True) and len(hyps) == 5
        assert len({tuple(h.ids) for h in hyps}) == 5  # distinct hypotheses
        for h in hyps:
            assert h.attention.shape[1] == lengths[i]  # only real source positions
            assert torch.allclose(h.attention.sum(-1), torch.ones(h.attention.size(0), dtype=h.attention.dtype))
            assert len(h.ids) <= limits[i] and 0 not in h.ids and 2 not in h.ids
    # garbage in padded source positions changes nothing
    noisy = src.clone()
    noisy[noisy == 0] = 7
    a = greedy_decode(model, src, lengths, DecodeOptions(beam=1))
    b = greedy_decode(model, noisy, lengths, DecodeOptions(beam=1))
    assert [h[0].ids for h in a] == [h[0].ids for h in b]


def test_teacher_forcing_loss_ignores_padding():
    model, (src, lengths) = _model(), _batch(3)
    tgt = torch.randint(4, 19, (4, 6))
    logits = model(src, lengths, tgt[:, :-1])
    assert logits.shape == (4, 5, 19)
    loss = seq2seq_loss(logits, tgt[:, 1:], pad_id=0)
    padded_tgt = torch.cat([tgt, torch.zeros(4, 3, dtype=torch.long)], dim=1)  # extra padding steps
    loss_padded = seq2seq_loss(model(src, lengths, padded_tgt[:, :-1]), padded_tgt[:, 1:], pad_id=0)
    assert loss.item() == pytest.approx(loss_padded.item(), abs=1e-9)
    smoothed = seq2seq_loss(logits, tgt[:, 1:], pad_id=0, label_smoothing=0.1)
    assert smoothed.item() != pytest.approx(loss.item())


# ------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trained through the command line, in the README's PREFIX form."""
    folder = tmp_path_factory.mktemp("mt")
    _write_pair(folder, "train", 300, 0)
    _write_pair(folder, "val", 40, 1)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    argv = [
        "translate",
        "train",
        "--data",
        str(folder / "train"),
        "--valid",
        str(folder / "val"),
        "--src-lang",
        "de",
        "--tgt-lang",
        "en",
        "--out",
        str(folder / "model"),
        "--epochs",
        "5",
        "--quiet",
        "--threads",
        "1",
        *flags,
    ]
    assert main(argv) == 0
    return folder


def test_training_learns_and_selects_on_bleu(trained):
    folder = trained
    metrics = json.loads((folder / "model" / "metrics.json").read_text())
    assert metrics["training"]["bleu"] > 60.0  # a toy word-for-word task is learned in a few epochs
    history = (folder / "model" / "history.csv").read_text().splitlines()
    col = history[0].split(",").index("bleu")
    bleus = [float(row.split(",")[col]) for row in history[1:]]
    assert metrics["training"]["best_epoch"] == 1 + bleus.index(max(bleus))  # the best-BLEU epoch was kept
    assert metrics["training"]["bleu"] == max(bleus)
    saved = json.loads((folder / "model" / "config.json").read_text())
    assert saved["task"] == "translate" and saved["config"]["train"]["monitor"] == "bleu"
    assert saved["config"]["lstm"]["hidden_size"] == 16 and saved["dims"]["src_vocab"] == 4 + 12
    assert metrics["valid"]["beam"] == 5 and metrics["valid"]["sentences"] == 40 and metrics["valid"]["bleu"] > 50
    de, en = _corpus(20, 5)
    assert lstmkit.load(folder / "model").evaluate(list(zip(de, en)), beam=3)["bleu"] > 50.0


def test_predict_outputs_one_per_input_and_reload_is_identical(trained):
    folder = trained
    translator = lstmkit.load(folder / "model")
    again = lstmkit.load(folder / "model")
    de, _ = _corpus(10, 7)
    a, b = translator.predict(de, beam=3, nbest=2), again.predict(de, beam=3, nbest=2)
    assert a == b and len(a) == 10 and all(len(o["nbest"]) == 2 for o in a)
    assert a[0]["nbest"][0] == {k: a[0][k] for k in ("text", "score", "tokens")}
    assert a[0]["nbest"][0]["score"] > a[0]["nbest"][1]["score"]
    one = translator.predict(de[0])  # a string is one sentence, never its characters
    assert len(one) == 1 and one[0]["text"] == a[0]["text"] and one[0]["tokens"] == one[0]["text"].split()
    assert "nbest" not in one[0]
    mixed = translator.predict(["", de[1], "   "], nbest=2, beam=2)
    assert [o["text"] for o in mixed] == ["", a[1]["text"], ""] and mixed[0] == {
        "text": "",
        "score": None,
        "tokens": [],
        "nbest": [],
    }
    assert json.loads(dumps_json(mixed)) == mixed  # JSON-able as they are
    gates = again.trace_gates(de[0])
    assert len(gates) == 2 and gates[0].i.shape == (1, len(de[0].split()), 16)


def test_inspect_gates(trained, tmp_path):
    folder = trained
    predictor = lstmkit.load(folder / "model")
    sample = predictor.inspect_sample(None)
    assert sample == (folder / "val.de").read_text(encoding="utf-8").splitlines()[0]
    assert predictor.step_labels(sample) == sample.split()
    png = tmp_path / "gates.png"
    assert main(["inspect", "--threads", "1", "--model", str(folder / "model"), "--output", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_same_seed_same_metrics(tmp_path):
    tr = _write_pair(tmp_path, "train", 60, 3)
    va = _write_pair(tmp_path, "val", 10, 4)
    settings = {
        **SMALL,
        "epochs": 2,
        "attention": "bahdanau",
        "tokenizer": "bpe",
        "shared_vocab": True,
        "lowercase": True,
    }
    runs = [lstmkit.train("translate", tr, va, tmp_path / f"m{i}", quiet=True, **settings) for i in range(2)]
    assert runs[0].metrics == runs[1].metrics and runs[0].history == runs[1].history
    loaded = lstmkit.load(tmp_path / "m0")
    assert loaded.src_codec is loaded.tgt_codec and loaded.config.lowercase  # one shared vocabulary
    assert not (tmp_path / "m0" / "target_tokenizer.json").exists()
    assert loaded.predict(["DER HUND"]) == runs[0].predictor.predict(["DER HUND"])


def test_without_valid_a_seeded_part_is_held_out():
    de, en = _corpus(60, 6)
    result = lstmkit.train("translate", list(zip(de, en)), quiet=True, **{**SMALL, "epochs": 1, "valid_fraction": 0.1})
    assert result.metrics["valid"]["sentences"] == 6 and "bleu" in result.history[0]
    assert result.predictor.sample in de


# ------------------------------------------------------------------------------------ CLI
def test_cli_evaluate_json_and_predict(trained, tmp_path, capsys, monkeypatch):
    folder = trained
    model = str(folder / "model")
    argv = [
        "translate",
        "evaluate",
        "--threads",
        "1",
        "--model",
        model,
        "--source",
        str(folder / "val.de"),
        "--target",
        str(folder / "val.en"),
        "--beam",
        "2",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bleu"] > 50 and out["sentences"] == 40 and out["bleu_signature"].startswith("nrefs:1")
    assert out["beam"] == 2
    assert main(["translate", "evaluate", "--threads", "1", "--model", model, "--data", str(folder / "val")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("BLEU = ") and "chrF = " in text and "sentences = 40" in text and "beam = 5" in text
    src = tmp_path / "in.de"
    src.write_text("der hund sieht die katze\n\nein mann mag eine frau\n", encoding="utf-8")
    png, hyp = tmp_path / "att.png", tmp_path / "out.en"
    argv = [
        "translate",
        "predict",
        "--threads",
        "1",
        "--model",
        model,
        "--data",
        str(src),
        "--output",
        str(hyp),
        "--plot-attention",
        str(png),
        "--plot-index",
        "2",
    ]
    assert main(argv) == 0
    lines = hyp.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[2].startswith("a man likes")
    assert png.stat().st_size > 1000
    assert main([*argv[:-1], "1"]) == 2  # line 1 is empty: nothing to plot
    assert "--plot-index" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _stdin("der hund jagt der katze\n"))
    assert main(["translate", "predict", "--threads", "1", "--model", model, "--nbest", "2", "--beam", "3"]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.strip().split("\n")]
    assert [r[0] for r in rows] == ["0", "1"] and rows[0][2] == "the dog chases the cat"
    monkeypatch.setattr("sys.stdin", _stdin("der hund jagt der katze\n\n"))
    assert main(["translate", "predict", "--threads", "1", "--model", model, "--scores"]) == 0
    scored = capsys.readouterr().out.split("\n")
    assert scored[0].split("\t")[1] == "the dog chases the cat" and float(scored[0].split("\t")[0]) < 0
    assert scored[1:] == ["", ""]
    monkeypatch.setattr("sys.stdin", _stdin("der hund jagt der katze\n"))
    assert main(["translate", "predict", "--threads", "1", "--model", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["text"] == "the dog chases the cat"


def test_readme_nbest_snippet(trained, capsys, monkeypatch):
    """`echo "..." | lstmkit translate predict --model runs/mt --nbest 3` and its Python twin."""
    model = str(trained / "model")
    monkeypatch.setattr("sys.stdin", _stdin("ein mann sieht der frau\n"))
    assert main(["translate", "predict", "--threads", "1", "--model", model, "--nbest", "3"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n\n") and [r.split("\t")[0] for r in out.strip().split("\n")] == ["0", "1", "2"]
    mt = lstmkit.load(model)
    best = mt.predict("ein mann sieht der frau", nbest=3)[0]
    assert [h["text"] for h in best["nbest"]] == [r.split("\t")[2] for r in out.strip().split("\n")]
    assert mt.predict(["ein mann sieht der frau"])[0]["text"] == best["text"]


def test_cli_bad_input_exits_2(tmp_path, capsys):
    (tmp_path / "a.de").write_text("x\ny\nz\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("x\ny\n", encoding="utf-8")
    base = ["translate", "train", "--out", str(tmp_path / "m"), "--quiet"]
    assert main([*base, "--source", str(tmp_path / "a.de"), "--target", str(tmp_path / "a.en")]) == 2
    err = capsys.readouterr().err
    assert "has 3 lines but" in err and "has 2" in err and "Traceback" not in err
    assert main(["translate", "predict", "--model", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    argv = [
        *base,
        "--source",
        str(tmp_path / "a.de"),
        "--target",
        str(tmp_path / "a.de"),
        "--valid-source",
        str(tmp_path / "a.de"),
    ]
    assert main(argv) == 2
    assert "must be given together" in capsys.readouterr().err
    assert (
        main(
            [
                *base,
                "--data",
                str(tmp_path / "a.de"),
                "--source",
                str(tmp_path / "a.de"),
                "--target",
                str(tmp_path / "a.de"),
            ]
        )
        == 2
    )
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
