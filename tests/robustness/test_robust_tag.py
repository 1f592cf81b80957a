"""Robustness table of ``lstmkit tag``: bad CoNLL / CoNLL-U / text files (empty, -DOCSTART- only,
folders, binary, wrong encodings, wrong delimiters, ragged or missing columns, the wrong format),
tags unseen in training, sentences beyond ``--max-len``, settings out of range, standard input with
nothing on it, and the Python API with in-memory data of the wrong shape (a sentence as one string,
empty tokens, tags that are not strings).

Every command case runs through ``harness.run_case`` (exit code, message fragment, no traceback, one
``error:`` line, nothing half-written, the model folder byte-identical). Cases that must WORK (UTF-16
with a byte-order mark, Windows line ends, empty lines kept in place, long sentences tagged in pieces)
exit 0 and check their output against the Python API on the plain version of the same input.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import Case, folder, put, run_case

import lstmkit
from lstmkit.config import ConfigError
from lstmkit.errors import DataError, LstmkitError
from lstmkit.io import to_jsonable
from lstmkit.tasks.tag.decode import Decoded, join_pieces

ONE = ("--threads", "1")
TINY = ("--embed-size", "4", "--char-dim", "3", "--char-hidden", "3", "--hidden-size", "4", "--casing-dim", "2")
PER = [["John"], ["Mary", "Smith"], ["Anna"]]
LOC = [["Paris"], ["New", "York"], ["Oslo"]]
FILL = ["the", "we", "met", "in", "saw", "and"]


def sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Random fillers around one or two entities, tags in IOB2."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(rng.randint(1, 2)):
            toks.append(rng.choice(FILL))
            tags.append("O")
            typ, ent = rng.choice([("PER", rng.choice(PER)), ("LOC", rng.choice(LOC))])
            toks += ent
            tags += [f"B-{typ}"] + [f"I-{typ}"] * (len(ent) - 1)
        out.append((toks, tags))
    return out


def conll(sents: list[tuple[list[str], list[str]]], sep: str = " ") -> str:
    return "".join("".join(f"{t}{sep}{g}\n" for t, g in zip(toks, tags)) + "\n" for toks, tags in sents)


GOOD = conll(sentences(30, 0))
VALID = conll(sentences(10, 1))
WORD = "{}\t{}\t_\t{}\t_\t_\t_\t_\t_\t_\n"
CONLLU = WORD.format(1, "John", "PROPN") + WORD.format(2, "met", "VERB") + "\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny IOB2 tagger (PER, LOC) trained once for the module."""
    folder = tmp_path_factory.mktemp("tag") / "m"
    tiny = dict(embed_size=4, char_dim=3, char_hidden=3, hidden_size=4, casing_dim=2, epochs=2, batch_size=8)
    lstmkit.train("tag", sentences(30, 0), sentences(10, 1), out=folder, quiet=True, **tiny)
    return folder


@pytest.fixture
def places(tmp_path: Path, model: Path) -> dict[str, Path]:
    return {"tmp": tmp_path, "m": model}


# ---------------------------------------------------------------------------------------------- helpers


def good(p: dict[str, Path]) -> Path:
    return put("train.conll", GOOD)(p)


def resolve(extra: tuple[Any, ...], p: dict[str, Path]) -> list[Any]:
    return [e(p) if callable(e) else e for e in extra]


def train(data: Callable[[dict[str, Path]], Any], *extra: Any, dry: bool = True) -> Callable:
    """``tag train --data DATA --out tmp/o EXTRA``: a dry run (reads every file), or a real one-epoch
    run of a tiny network (reaches what only ``prepare`` sees: the tags of --valid, --max-len)."""
    run = ("--dry-run",) if dry else ("--epochs", "1", "--quiet", *TINY)
    return lambda p: ["tag", "train", "--data", data(p), "--out", p["tmp"] / "o", *run, *ONE, *resolve(extra, p)]


def evaluate(data: Callable[[dict[str, Path]], Any], *extra: Any) -> Callable:
    return lambda p: ["tag", "evaluate", "--model", p["m"], "--data", data(p), *ONE, *resolve(extra, p)]


def predict(data: Callable[[dict[str, Path]], Any] | str, *extra: Any) -> Callable:
    return lambda p: [
        "tag",
        "predict",
        "--model",
        p["m"],
        "--data",
        data if isinstance(data, str) else data(p),
        *ONE,
        *resolve(extra, p),
    ]


@dataclass(frozen=True)
class Row:
    """One case of the table: the command ``case``, standard input, and for the cases that work a
    check of what they printed: ``check(out, err, places)``."""

    case: Case
    stdin: bytes | None = None
    check: Callable[[str, str, dict[str, Path]], None] | None = None


def same_metrics_as(text: str) -> Callable[[str, str, dict[str, Path]], None]:
    """``evaluate --json`` printed what the Python API gives for the UTF-8 CoNLL ``text``."""

    def check(out: str, err: str, p: dict[str, Path]) -> None:
        plain = p["tmp"] / "plain.conll"
        plain.write_text(text, encoding="utf-8")
        assert json.loads(out) == lstmkit.load(p["m"]).evaluate(plain)

    return check


def same_predictions_as(inputs: list[str]) -> Callable[[str, str, dict[str, Path]], None]:
    """``predict --json`` printed one prediction per input line, as the API gives for ``inputs``."""

    def check(out: str, err: str, p: dict[str, Path]) -> None:
        assert json.loads(out) == to_jsonable(lstmkit.load(p["m"]).predict(inputs))

    return check


def one_warning(fragment: str) -> Callable[[str, str, dict[str, Path]], None]:
    def check(out: str, err: str, p: dict[str, Path]) -> None:
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 1 and fragment in warnings[0], err

    return check


def long_sentence_tagged_whole(n: int) -> Callable[[str, str, dict[str, Path]], None]:
    """The one warning, and every one of the ``n`` tokens has its tag (nothing truncated)."""

    def check(out: str, err: str, p: dict[str, Path]) -> None:
        one_warning("1 of 2 sentences are longer than --max-len 512 tokens")(out, err, p)
        outs = json.loads(out)
        assert len(outs[0]["tokens"]) == len(outs[0]["tags"]) == n and len(outs[1]["tags"]) == 2

    return check


LONG = " ".join(["we met John in Paris"] * 240)  # 1200 tokens: over --max-len 512
LONG_CONLL = conll([(LONG.split(), ["O", "O", "B-PER", "O", "B-LOC"] * 240)]) + GOOD
UTF16 = GOOD.encode("utf-16")  # with a byte-order mark

# ---------------------------------------------------------------------------------------------- the table
ROWS = [
    # ---- empty, header-only (-DOCSTART- only), whitespace-only, missing files, folders, stdin
    Row(Case("train-empty-file", train(put("e.conll", "")), 2, "e.conll: empty file")),
    Row(Case("train-whitespace-only", train(put("w.conll", " \n\t\n\n")), 2, "w.conll: empty file")),
    Row(Case("train-docstart-only", train(put("d.conll", "-DOCSTART- -X- O\n\n")), 2, "no sentences found")),
    Row(Case("train-data-is-a-folder", train(folder), 2, "a_folder: is a folder, not a file")),
    Row(Case("train-valid-is-a-folder", train(good, "--valid", folder), 2, "a_folder: is a folder")),
    Row(Case("train-test-missing", train(good, "--test", "/no/such.conll"), 2, "such.conll: file not found")),
    Row(Case("train-stdin-empty", train(lambda p: "-"), 2, "<stdin>: nothing on standard input"), stdin=b""),
    Row(Case("train-stdin-works", train(lambda p: "-"), 0, '"data": "-"', stream="out"), stdin=GOOD.encode()),
    # ---- encodings and binary files
    Row(Case("train-binary-file", train(put("b.bin", bytes(range(256)) * 4)), 2, "binary data (a NUL byte)")),
    Row(Case("train-nul-in-a-token", train(put("n.conll", "EU B-ORG\nre\x00jects O\n")), 2, "line 2, column 3")),
    Row(Case("train-latin1", train(put("l.conll", "café O\n".encode("latin-1"))), 2, "line 1 is not valid UTF-8")),
    Row(Case("train-utf16-without-bom", train(put("u.conll", GOOD.encode("utf-16-le"))), 2, "NUL byte")),
    Row(Case("train-utf16-bom-works", train(put("u16.conll", UTF16)), 0, '"format": "conll"', stream="out")),
    Row(Case("train-crlf-works", train(put("c.conll", GOOD.replace("\n", "\r\n"))), 0, '"scheme"', stream="out")),
    Row(Case("train-tabs-work", train(put("t.conll", conll(sentences(5, 0), "\t"))), 0, '"tag"', stream="out")),
    # ---- wrong delimiters, ragged and missing columns, the wrong format
    Row(Case("train-comma-delimited", train(put("c.csv", GOOD.replace(" ", ","))), 2, "holds commas: CoNLL columns")),
    Row(Case("train-semicolons", train(put("s.conll", GOOD.replace(" ", ";"))), 2, "holds ';'")),
    Row(Case("train-one-column", train(put("o.conll", "EU\nrejects\n")), 2, "o.conll:1: only one column")),
    Row(
        Case(
            "train-ragged-row",
            train(put("r.conll", "EU NNP B-ORG\nrejects O\n")),
            2,
            "r.conll:2: expected 3 columns (as on the first token line), found 2",
        )
    ),
    Row(
        Case("train-tag-column-out-of-range", train(good, "--tag-column", "5"), 2, "tag column 5 is out of range"),
    ),
    Row(Case("train-conllu-read-as-conll", train(put("x.conllu", CONLLU)), 2, "holds only '_': no tags")),
    Row(
        Case(
            "train-conll-read-as-conllu",
            train(good, "--format", "conllu"),
            2,
            "train.conll:1: expected 10 tab-separated CoNLL-U columns, found 1",
        )
    ),
    Row(
        Case(
            "train-conllu-with-spaces",
            train(put("sp.conllu", CONLLU.replace("\t", " ")), "--format", "conllu"),
            2,
            "separated by spaces: CoNLL-U needs tabs",
        )
    ),
    Row(
        Case(
            "train-conllu-bad-id",
            train(put("id.conllu", WORD.format("x", "John", "PROPN")), "--format", "conllu"),
            2,
            "id.conllu:1: column 1 (ID) is 'x', not a word number",
        )
    ),
    Row(
        Case(
            "train-conllu-empty-form",
            train(put("f.conllu", WORD.format(1, "", "PROPN")), "--format", "conllu"),
            2,
            "f.conllu:1: column 2 (FORM) is empty",
        )
    ),
    Row(
        Case(
            "train-conllu-missing-upos",
            train(put("m.conllu", WORD.format(1, "John", "_")), "--format", "conllu"),
            2,
            "no UPOS tag ('_')",
        )
    ),
    Row(Case("train-mixed-schemes", train(put("m.conll", "a B-PER\nb O\n\nc I-LOC\n")), 2, "mixed tag schemes")),
    Row(Case("train-scheme-mismatch", train(good, "--scheme", "IOBES"), 2, "tags are not IOBES")),
    # ---- tags unseen in training, sentences beyond --max-len (real one-epoch runs of a tiny network)
    Row(
        Case(
            "train-valid-tag-unseen",
            train(good, "--valid", put("v.conll", "Rome B-CITY\n\n"), dry=False),
            2,
            "v.conll:1: entity type 'CITY' (tag 'B-CITY') was not seen in training (the training data has: LOC, PER)",
        )
    ),
    Row(
        Case("train-long-sentence-warns", train(put("long.conll", LONG_CONLL), dry=False), 0),
        check=one_warning("1 of 31 sentences are longer than --max-len 512 tokens: each is cut into pieces"),
    ),
    # ---- settings out of range
    Row(Case("train-max-len-zero", train(good, "--max-len", "0"), 2, "max_len (--max-len) must be >= 1, got 0")),
    Row(
        Case("train-char-kernel-even", train(good, "--char-kernel", "4"), 2, "char_kernel (--char-kernel) must be odd")
    ),
    Row(Case("train-dropout-one", train(good, "--dropout", "1"), 2, "dropout (--dropout) must be < 1")),
    Row(Case("train-zoneout-negative", train(good, "--zoneout", "-0.1"), 2, "zoneout (--zoneout) must be >= 0")),
    Row(Case("train-unk-replace-over-one", train(good, "--unk-replace", "1.5"), 2, "unk_replace (--unk-replace)")),
    Row(Case("train-valid-fraction-one", train(good, "--valid-fraction", "1"), 2, "must be < 1")),
    Row(Case("train-batch-size-fraction", train(good, "--batch-size", "0.5"), 2, "must be an integer")),
    Row(
        Case(
            "train-hidden-size-huge",
            train(good, "--hidden-size", "1e11", dry=False),
            2,
            "hidden_size (--hidden-size) must be <= 65536",
        )
    ),
    Row(Case("train-embeddings-missing", train(good, "--embeddings", "/no/vec.txt"), 2, "vec.txt: embeddings file")),
    Row(
        Case(
            "train-embeddings-nan",
            train(good, "--embeddings", put("nan.vec", "john 0.1 nan\nparis 1 2\n"), dry=False),
            2,
            "nan.vec: line 1: NaN or infinite value in the vector for 'john'",
        )
    ),
    Row(
        Case(
            "train-embeddings-beyond-float32",
            train(good, "--embeddings", put("big.vec", "john 0.1 1e39\n"), dry=False),
            2,
            "big.vec: the vector for 'john' holds a value beyond float32",
        )
    ),
    Row(
        Case(
            "train-embeddings-ragged",
            train(good, "--embeddings", put("r.vec", "john 0.1 0.2\nparis 1\n"), dry=False),
            2,
            "r.vec: line 2 has 1 values, earlier lines have 2",
        )
    ),
    Row(Case("train-word-dim-renamed", train(good, "--word-dim", "50"), 2, "--word-dim is now --embed-size")),
    # ---- evaluate
    Row(Case("evaluate-empty-file", evaluate(put("e.conll", "")), 2, "e.conll: empty file", keep=("m",))),
    Row(Case("evaluate-folder", evaluate(folder), 2, "is a folder", keep=("m",))),
    Row(
        Case(
            "evaluate-type-unseen",
            evaluate(put("u.conll", "EU B-ORG\nmet O\n\n")),
            2,
            "u.conll:1: entity type 'ORG' (tag 'B-ORG') was not seen in training (the model knows: LOC, PER)",
            keep=("m",),
        )
    ),
    Row(Case("evaluate-plain-labels", evaluate(put("p.conll", "EU NNP\n\n")), 2, "tags are not IOB2", keep=("m",))),
    Row(Case("evaluate-max-len-zero", evaluate(good, "--max-len", "0"), 2, "max_len (--max-len) must be >= 1")),
    Row(Case("evaluate-format-text", evaluate(good, "--format", "text"), 2, "format (--format) must be one of")),
    Row(
        Case("evaluate-utf16-bom-works", evaluate(put("u16.conll", UTF16), "--json"), 0, keep=("m",)),
        check=same_metrics_as(GOOD),
    ),
    Row(
        Case("evaluate-crlf-works", evaluate(put("c.conll", GOOD.replace("\n", "\r\n")), "--json"), 0, keep=("m",)),
        check=same_metrics_as(GOOD),
    ),
    Row(
        Case("evaluate-long-sentence-warns", evaluate(put("long.conll", LONG_CONLL)), 0, keep=("m",)),
        check=one_warning("long.conll: 1 of 31 sentences are longer than --max-len 512 tokens"),
    ),
    # ---- predict
    Row(Case("predict-stdin-empty", predict("-"), 2, "<stdin>: nothing on standard input", keep=("m",)), stdin=b""),
    Row(Case("predict-empty-file", predict(put("e.txt", "")), 2, "e.txt: empty file", keep=("m",))),
    Row(Case("predict-folder", predict(folder), 2, "is a folder", keep=("m",))),
    Row(Case("predict-binary", predict(put("b.txt", b"EU\x00 x\n")), 2, "line 1, column 3: binary data")),
    Row(Case("predict-nbest-zero", predict(put("p.txt", "EU\n"), "--nbest", "0"), 2, "nbest (--nbest) must be >= 1")),
    Row(Case("predict-max-len-zero", predict(put("p.txt", "EU\n"), "--max-len", "0"), 2, "must be >= 1, got 0")),
    Row(Case("predict-format-unknown", predict(put("p.txt", "EU\n"), "--format", "xml"), 2, "must be one of auto")),
    Row(
        Case(
            "predict-conll-ragged",
            predict(put("r.conll", "EU X\nrejects\n")),
            2,
            "r.conll:2: expected 2 columns (as on the first token line), found 1",
        )
    ),
    Row(
        Case("predict-conllu-nine-columns", predict(put("n.conllu", "1\tEU\t_\t_\t_\t_\t_\t_\t_\n")), 2, "found 9"),
    ),
    Row(
        Case("predict-stdin-works", predict("-", "--json"), 0, keep=("m",)),
        stdin=b"we met John\n\nin Paris\n",
        check=same_predictions_as(["we met John", "", "in Paris"]),
    ),
    Row(
        Case(
            "predict-utf16-bom-works",
            predict(put("p16.txt", "we met John\n\nin Paris\n".encode("utf-16")), "--json"),
            0,
        ),
        check=same_predictions_as(["we met John", "", "in Paris"]),
    ),
    Row(
        Case("predict-crlf-works", predict(put("c.txt", "we met John\r\n\r\nin Paris\r\n"), "--json"), 0),
        check=same_predictions_as(["we met John", "", "in Paris"]),
    ),
    Row(
        Case("predict-long-sentence-in-pieces", predict(put("long.txt", LONG + "\nin Paris\n"), "--json"), 0),
        check=long_sentence_tagged_whole(1200),
    ),
    # ---- inspect (the tagger's sample)
    Row(
        Case(
            "inspect-empty-data",
            lambda p: ["inspect", "--model", p["m"], "--data", put("e.txt", "")(p), "--output", p["tmp"] / "g.png"],
            2,
            "e.txt: empty file",
            keep=("m",),
        )
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.case.id for r in ROWS])
def test_tag_table(row: Row, places: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    if row.stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(row.stdin)))
    out, err = run_case(row.case, places, capsys)
    if row.check is not None:
        row.check(out, err, places)


def test_the_table_is_big_enough() -> None:
    assert len(ROWS) + len(API_CASES) >= 25 and len({r.case.id for r in ROWS}) == len(ROWS)


# ---------------------------------------------------------------------------------------------- Python API
def _train(data: Any, **kw: Any) -> Any:
    return lstmkit.train("tag", data, epochs=1, quiet=True, embed_size=4, hidden_size=4, **kw)


API_CASES: list[tuple[str, Callable[[Any], Any], type[LstmkitError], str]] = [
    ("train-sentence-as-one-string", lambda p: _train([("EU rejects", "B-ORG O")]), DataError, "are one string"),
    ("train-tags-as-one-string", lambda p: _train([(["EU", "rejects"], "B-ORG O")]), DataError, "the tags are one"),
    ("train-none-item", lambda p: _train([None]), DataError, "sentence 1: expected a (tokens, tags) pair"),
    ("train-triple", lambda p: _train([(["a"], ["O"], ["x"])]), DataError, "got a 3-item tuple"),
    ("train-int-token", lambda p: _train([(["a", 3], ["O", "O"])]), DataError, "sentence 1: token 2 is int"),
    ("train-none-tag", lambda p: _train([(["a"], [None])]), DataError, "tag 1 is NoneType"),
    ("train-empty-token-cnn", lambda p: _train([(["a", ""], ["O", "O"])]), DataError, "token 2 is empty"),
    (
        "train-empty-token-lstm",
        lambda p: _train([(["a", " "], ["O", "O"])], char_encoder="lstm"),
        DataError,
        "token 2 is empty",
    ),
    ("train-length-mismatch", lambda p: _train([(["a", "b"], ["O"])]), DataError, "2 tokens but 1 tags"),
    ("train-no-tokens", lambda p: _train([([], [])]), DataError, "sentence 1: no tokens"),
    ("train-int", lambda p: _train(3), DataError, "or a list of (tokens, tags) pairs, got int"),
    ("train-dict", lambda p: _train({"tokens": ["a"]}), DataError, "got dict"),
    ("train-empty-list", lambda p: _train([]), DataError, "data: no sentences"),
    ("train-max-len-zero", lambda p: _train(sentences(4, 0), max_len=0), ConfigError, "max_len (--max-len)"),
    ("predict-empty-token", lambda p: p.predict([["EU", ""]]), DataError, "input 1: token 2 is empty"),
    ("predict-blank-token", lambda p: p.predict([["EU", "  "]]), DataError, "token 2 is empty ('  ')"),
    ("predict-int-token", lambda p: p.predict([["EU", 3]]), DataError, "input 1: token 2 is int"),
    ("predict-int", lambda p: p.predict(3), DataError, "input 1: expected a sentence"),
    ("predict-bytes", lambda p: p.predict(b"EU rejects"), DataError, "got bytes"),
    ("predict-batch-zero", lambda p: p.predict("EU", batch_size=0), ConfigError, "batch_size (--batch-size)"),
    ("predict-max-len-zero", lambda p: p.predict("EU", max_len=0), ConfigError, "max_len (--max-len) must be >= 1"),
    ("predict-unknown-option", lambda p: p.predict("EU", nbets=2), ConfigError, "did you mean nbest?"),
    ("evaluate-sentence-as-string", lambda p: p.evaluate([("EU rejects", "B-ORG O")]), DataError, "one string"),
    ("evaluate-int", lambda p: p.evaluate(3), DataError, "got int"),
    ("evaluate-dict-items", lambda p: p.evaluate([{"tokens": ["a"]}]), DataError, "got dict"),
    (
        "evaluate-type-unseen",
        lambda p: p.evaluate([(["EU", "met"], ["B-ORG", "O"])]),
        DataError,
        "data: sentence 1, token 1: entity type 'ORG' (tag 'B-ORG') was not seen in training",
    ),
    ("evaluate-max-len-zero", lambda p: p.evaluate(sentences(2, 0), max_len=0), ConfigError, "must be >= 1"),
    ("trace-gates-empty", lambda p: p.trace_gates([]), DataError, "sample: empty sentence"),
    ("trace-gates-empty-token", lambda p: p.trace_gates(["EU", ""]), DataError, "token 2 is empty"),
]


@pytest.mark.parametrize(("call", "error", "fragment"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_python_api_refuses_bad_shapes(call, error, fragment, model: Path) -> None:
    """In-memory data and options of the wrong shape: one-line LstmkitError naming the item, never a
    Python exception from deep inside (and never NaN from an empty word)."""
    with pytest.raises(error) as info:
        call(lstmkit.load(model))
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and len(msg) < 600, msg


# ---------------------------------------------------------------------------------------------- --max-len
def test_a_long_sentence_is_tagged_in_pieces(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Over --max-len, a sentence is tagged piece by piece: the pieces' tags, marginals and entities (shifted),
    and n-best paths whose probability is the product of the pieces'; one warning line."""
    p = lstmkit.load(model)
    toks = LONG.split()[:23]
    capsys.readouterr()
    [whole] = p.predict([toks], max_len=10, nbest=2, confidence=True)
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "1 of 1 sentences are longer than --max-len 10 tokens" in err
    parts = p.predict([toks[0:10], toks[10:20], toks[20:23]], nbest=2, confidence=True)
    assert whole.tokens == toks and whole.tags == [t for x in parts for t in x.tags]
    assert whole.confidence == [c for x in parts for c in x.confidence]
    shifted = [(e.label, e.start + 10 * i, e.end + 10 * i) for i, x in enumerate(parts) for e in x.entities]
    assert [(e.label, e.start, e.end) for e in whole.entities] == shifted
    best = math.prod(x.nbest[0].probability for x in parts)
    assert whole.nbest[0].probability == pytest.approx(best) and whole.nbest[0].tags == whole.tags
    assert p.predict([toks], max_len=100)[0].tags is not None and capsys.readouterr().err == ""


def test_join_pieces_keeps_the_n_best_products() -> None:
    a = Decoded([0, 1], [0.9, 0.8], [], [([0, 1], 0.5), ([1, 1], 0.3)])
    b = Decoded([2], [0.7], [], [([2], 0.6), ([0], 0.4)])
    joined = join_pieces([(0, a), (2, b)], nbest=3)
    assert joined.path == [0, 1, 2] and joined.token_probs == [0.9, 0.8, 0.7]
    assert [(path, round(q, 6)) for path, q in joined.nbest or []] == [
        ([0, 1, 2], 0.3),
        ([0, 1, 0], 0.2),
        ([1, 1, 2], 0.18),
    ]


def test_inspect_labels_are_the_steps_traced(model: Path) -> None:
    p = lstmkit.load(model)
    for sample in (["EU", "met", "John"], "we met John in Paris", LONG):
        assert len(p.step_labels(sample)) == p.trace_gates(sample)[0].i.shape[1]
    assert len(p.step_labels(LONG)) == 512  # --max-len: the first 512 tokens are traced
