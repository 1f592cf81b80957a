"""Translation: decoding (greedy, batched beam, masking), training with BLEU selection, save/load, CLI."""

import json
import random

import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.tasks.translate import TranslateConfig, load_predictor, train
from lstmkit.tasks.translate_decode import DecodeOptions, beam_decode, greedy_decode, max_lengths
from lstmkit.tasks.translate_model import Seq2Seq, Seq2SeqConfig, seq2seq_loss
from lstmkit.train import TrainConfig

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
    cfg = Seq2SeqConfig(
        src_vocab=23, tgt_vocab=19, emb_size=8, hidden_size=12, num_layers=layers, dropout=0.0, attention=kind
    )
    return Seq2Seq(cfg).double().eval()


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 1])
    src = torch.randint(4, 23, (4, 7), generator=g)
    for i, n in enumerate(lengths.tolist()):
        src[i, n:] = 0
    return src, lengths


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one thread is as fast, and spares a shared 2-core machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
            assert torch.allclose(h.attention.sum(-1), torch.ones(h.attention.size(0)))
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
def _cfg(**kw):
    t = TrainConfig(
        epochs=kw.pop("epochs", 5),
        batch_size=32,
        lr=0.01,
        monitor="bleu",
        mode="max",
        patience=3,
        device="cpu",
        quiet=True,
        seed=kw.pop("seed", 0),
    )
    base = dict(tokenizer="whitespace", vocab_size=100, emb_size=16, hidden_size=32, dropout=0.0, label_smoothing=0.0)
    return TranslateConfig(train=t, **{**base, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mt")
    tr = _write_pair(folder, "train", 300, 0)
    va = _write_pair(folder, "val", 40, 1)
    translator = train(_cfg(), *tr, *va, out_dir=folder / "model")
    return folder, translator


def test_training_learns_and_selects_on_bleu(trained):
    folder, translator = trained
    assert translator.metrics["bleu"] > 60.0  # a toy word-for-word task is learned in a few epochs
    history = (folder / "model" / "history.csv").read_text().splitlines()
    col = history[0].split(",").index("bleu")
    bleus = [float(row.split(",")[col]) for row in history[1:]]
    assert translator.metrics["epoch"] == 1 + bleus.index(max(bleus))  # the best-BLEU epoch was kept
    saved = json.loads((folder / "model" / "config.json").read_text())
    assert saved["task"] == "translate" and saved["translate"]["train"]["monitor"] == "bleu"
    assert json.loads((folder / "model" / "metrics.json").read_text())["bleu"] == translator.metrics["bleu"]
    de, en = _corpus(20, 5)
    assert translator.evaluate(de, en, beam=3)["bleu"] > 50.0


def test_reload_gives_identical_predictions(trained):
    folder, translator = trained
    again = lstmkit.load(folder / "model")
    de, _ = _corpus(10, 7)
    a, b = translator.translate(de, beam=3, nbest=2), again.translate(de, beam=3, nbest=2)
    assert [[t.text for t in n] for n in a] == [[t.text for t in n] for n in b]
    assert [n[0].score for n in a] == [n[0].score for n in b]
    gates = again.trace_gates(de[0])
    assert len(gates) == 2 and gates[0].i.shape == (1, len(de[0].split()), 16)


def test_inspect_gates(trained, tmp_path):
    folder, _ = trained
    predictor = lstmkit.load(folder / "model")
    sample = predictor.inspect_sample(None)
    assert sample == (folder / "val.de").read_text(encoding="utf-8").splitlines()[0]
    assert predictor.step_labels(sample) == sample.split()
    png = tmp_path / "gates.png"
    assert main(["inspect", "--model", str(folder / "model"), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_same_seed_same_metrics(tmp_path):
    tr = _write_pair(tmp_path, "train", 60, 3)
    va = _write_pair(tmp_path, "val", 10, 4)
    cfg = dict(epochs=2, attention="bahdanau", tokenizer="bpe", shared_vocab=True, lowercase=True)
    runs = [train(_cfg(**cfg), *tr, *va, out_dir=tmp_path / f"m{i}") for i in range(2)]
    assert runs[0].metrics == runs[1].metrics
    loaded = load_predictor(tmp_path / "m0")
    assert loaded.src_codec is loaded.tgt_codec and loaded.cfg.lowercase  # one shared vocabulary
    assert not (tmp_path / "m0" / "target_tokenizer.json").exists()
    assert loaded.translate_text(["DER HUND"]) == runs[0].translate_text(["DER HUND"])


# ------------------------------------------------------------------------------------ CLI
def test_cli_evaluate_json_and_predict(trained, tmp_path, capsys, monkeypatch):
    folder, _ = trained
    model = str(folder / "model")
    assert (
        main(
            [
                "translate",
                "evaluate",
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
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["bleu"] > 50 and out["sentences"] == 40 and out["bleu_signature"].startswith("nrefs:1")
    src = tmp_path / "in.de"
    src.write_text("der hund sieht die katze\n\nein mann mag eine frau\n", encoding="utf-8")
    png, hyp = tmp_path / "att.png", tmp_path / "out.en"
    assert (
        main(
            [
                "translate",
                "predict",
                "--model",
                model,
                "--input",
                str(src),
                "--output",
                str(hyp),
                "--plot-attention",
                str(png),
                "--plot-index",
                "2",
            ]
        )
        == 0
    )
    lines = hyp.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[2].startswith("a man likes")
    assert png.stat().st_size > 1000
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("der hund jagt der katze\n"))
    assert main(["translate", "predict", "--model", model, "--nbest", "2", "--beam", "3"]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.strip().split("\n")]
    assert [r[0] for r in rows] == ["0", "1"] and rows[0][2] == "the dog chases the cat"


def test_cli_bad_input_exits_2(tmp_path, capsys):
    (tmp_path / "a.de").write_text("x\ny\nz\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("x\ny\n", encoding="utf-8")
    code = main(
        [
            "translate",
            "train",
            "--source",
            str(tmp_path / "a.de"),
            "--target",
            str(tmp_path / "a.en"),
            "--out",
            str(tmp_path / "m"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has 3 lines but" in err and "has 2" in err and "Traceback" not in err
    assert main(["translate", "predict", "--model", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert (
        main(
            [
                "translate",
                "train",
                "--source",
                str(tmp_path / "a.de"),
                "--target",
                str(tmp_path / "a.de"),
                "--valid-source",
                str(tmp_path / "a.de"),
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 2
    )
    assert "must be given together" in capsys.readouterr().err
