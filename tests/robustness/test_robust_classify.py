"""Robustness table of ``lstmkit classify``: bad input files for train (``--dry-run`` reaches the
readers), evaluate and predict, the --max-len limit, and bad in-memory data through the Python API.

Each CLI case (see harness.py): exit code, message fragment, no traceback, one ``error:`` line,
nothing half-written, earlier files byte-identical. Cases that should work are cases too (exit 0,
output checked). The model is the fixture folder with ``max_len`` set to 8 (its weights unchanged).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import Case, folder, put, run_case

import lstmkit
from lstmkit.errors import LstmkitError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "classify"
GOOD = "sentence\tlabel\n" + "a good film\tpos\nbad and awful\tneg\n" * 6
LONG = "good " * 5000  # 5000 tokens: beyond the model's --max-len 8 and any sane default


def train(data: Callable[[dict[str, Path]], Path], *extra: object, dry: bool = True):
    run = ["--dry-run"] if dry else ["--epochs", "1", "--hidden-size", "4", "--embed-size", "4", "--quiet"]
    return lambda p: ["classify", "train", "--data", data(p), "--out", p["tmp"] / "o", *run, "--threads", "1", *extra]


def evaluate(data: Callable[[dict[str, Path]], Path], *extra: object):
    return lambda p: ["classify", "evaluate", "--model", p["m"], "--data", data(p), *extra]


def predict(data: Callable[[dict[str, Path]], Path] | None, *extra: object):
    return lambda p: ["classify", "predict", "--model", p["m"], "--data", data(p) if data else "-", *extra]


def numeric(rows: str) -> Callable[[dict[str, Path]], Path]:
    return put("num.tsv", "sequence\tlabel\n" + rows + "1 2 3\tup\n3 2 1\tdown\n" * 3)


M = ("m",)
CASES = [
    # ---------------------------------------------------------------- empty and header-only files
    Case("empty-file", train(put("e.tsv", "")), 2, "e.tsv: empty file"),
    Case("whitespace-only", train(put("w.tsv", "  \n\t\n \n")), 2, "w.tsv: empty file"),
    Case("header-only", train(put("h.tsv", "sentence\tlabel\n")), 2, "h.tsv: no examples after the header"),
    Case("header-only-evaluate", evaluate(put("h.tsv", "sentence\tlabel\n")), 2, "no examples", keep=M),
    # ---------------------------------------------------------------- delimiters and columns
    Case("tsv-with-commas", train(put("c.tsv", GOOD.replace("\t", ","))), 2, "separated by commas"),
    Case("csv-with-semicolons", train(put("s.csv", GOOD.replace("\t", ";"))), 2, "separated by ';'"),
    Case(
        "label-column-missing",  # was misread as label<TAB>text lines (the 14.9 KB error)
        train(put("n.tsv", "sentence\ttext\n" + "good film\tx\n" * 3)),
        2,
        "n.tsv: no label column found (columns: sentence, text); name it with --label-column",
    ),
    Case(
        "label-column-missing-evaluate",
        evaluate(put("n.tsv", "sentence\ttext\n" + "good film\tx\n" * 3)),
        2,
        "no label column found",
        keep=M,
    ),
    Case(
        "label-column-twice",
        train(put("d.tsv", "sentence\tlabel\tlabel\ngood\tpos\tpos\nbad\tneg\tneg\n")),
        2,
        "column 'label' appears twice in the header (columns 2 and 3)",
    ),
    Case("named-column-missing", train(put("g.tsv", GOOD), "--label-column", "stars"), 2, "column 'stars' not found"),
    Case(
        "text-and-label-same-column",
        train(put("g.tsv", GOOD), "--text-column", "label", "--label-column", "label"),
        2,
        "the text and the label column are the same",
    ),
    Case("ragged-row", train(put("r.tsv", GOOD + "fine\tpos\textra\n")), 2, "line 14 has 3 fields, the header has 2"),
    Case(
        "unclosed-quote",
        train(put("q.csv", 'sentence,label\n"good film,pos\nbad film,neg\n')),
        2,
        'line 2 has 1 fields, the header has 2; a quote (") that never closes?',
    ),
    Case("empty-label", train(put("l.tsv", "sentence\tlabel\ngood\t \n")), 2, "l.tsv: line 2: empty label"),
    Case("no-tab-in-lines", train(put("x.txt", "pos good film\nneg bad\n")), 2, "line 1: expected 'label<TAB>text'"),
    # ---------------------------------------------------------------- encodings, binary, folders
    Case(
        "latin-1",
        train(put("l1.tsv", (GOOD + "café noir\tpos\n").encode("latin-1"))),
        2,
        "l1.tsv: line 14 is not valid UTF-8 (byte 0xe9 at column 4); save it as UTF-8",
    ),
    Case("binary", train(put("b.tsv", bytes(range(256)) * 8)), 2, "b.tsv: line 1, column 1: binary data"),
    Case("folder", train(folder), 2, "a_folder: is a folder, not a file"),
    Case("missing-file", train(lambda p: p["tmp"] / "none.tsv"), 2, "none.tsv: file not found"),
    Case("utf16-with-bom-works", train(put("u.tsv", GOOD.encode("utf-16"))), 0, '"max_len": 512', stream="out"),
    Case("windows-line-ends-work", train(put("crlf.tsv", GOOD.replace("\n", "\r\n"))), 0, '"input"', stream="out"),
    Case("utf16-evaluate-works", evaluate(put("u.tsv", GOOD.encode("utf-16"))), 0, "examples  12", "out", keep=M),
    # ---------------------------------------------------------------- labels
    Case("one-label", train(put("o.tsv", "sentence\tlabel\n" + "good\tpos\n" * 5)), 2, "at least 2 different labels"),
    Case(
        "valid-label-unseen-in-training",
        lambda p: [*train(put("g.tsv", GOOD))(p), "--valid", put("v.tsv", "sentence\tlabel\nok\tmeh\n")(p)],
        2,
        "v.tsv: line 2: label 'meh' does not occur in the training data (2 labels: neg, pos)",
    ),
    Case(
        "test-file-with-one-label-works",
        lambda p: [*train(put("g.tsv", GOOD))(p), "--test", put("t.tsv", "sentence\tlabel\nok\tpos\n")(p)],
        0,
        '"test": ',
        "out",
    ),
    Case(
        "test-file-label-unseen",
        lambda p: [*train(put("g.tsv", GOOD))(p), "--test", put("t.tsv", "sentence\tlabel\nok\tmeh\n")(p)],
        2,
        "t.tsv: line 2: label 'meh' does not occur in the training data",
    ),
    Case(
        "evaluate-label-unseen",
        evaluate(put("u.tsv", "sentence\tlabel\ngood\tpos\nok\tmeh\n")),
        2,
        "u.tsv: line 3: label 'meh' is not one the model knows (2 labels: neg, pos)",
        keep=M,
    ),
    Case(
        "evaluate-many-unknown-labels-short-message",  # label<TAB>text lines with one label per line
        evaluate(put("many.tsv", "".join(f"label{i}\ttext {i}\n" for i in range(3000)))),
        2,
        "is not one the model knows",
        keep=M,
    ),
    # ---------------------------------------------------------------- numbers (--input numeric)
    Case("numeric-nan", train(numeric("1 nan 3\tup\n"), "--input", "numeric"), 2, "line 2: non-finite value 'nan'"),
    Case("numeric-inf", train(numeric("1,-inf\tup\n"), "--input", "numeric"), 2, "non-finite value '-inf'"),
    Case("numeric-huge", train(numeric("1e39 1\tup\n"), "--input", "numeric"), 2, "'1e39' is too large"),
    Case("numeric-garbage", train(numeric("1 two 3\tup\n"), "--input", "numeric"), 2, "'two' is not a number"),
    # ---------------------------------------------------------------- limits (--max-len)
    Case("max-len-zero", train(put("g.tsv", GOOD), "--max-len", "0"), 2, "max_len (--max-len) must be >= 1, got 0"),
    Case(
        "long-text-train-warns-once",
        train(put("long.tsv", GOOD + LONG + "\tpos\n" + LONG + "\tneg\n"), "--max-len", "16", dry=False),
        0,
        "warning: ",
    ),
    Case(
        "long-text-evaluate-warns",
        evaluate(put("long.tsv", GOOD + LONG + "\tpos\n")),
        0,
        "1 text longer than --max-len 8 tokens (longest 5000) cut to their first 8",
        keep=M,
    ),
    Case(
        "long-text-predict-warns",
        predict(put("long.txt", "good film\n" + LONG + "\n" + LONG + "\n")),
        0,
        "2 texts longer than --max-len 8 tokens (longest 5000) cut to their first 8",
        keep=M,
    ),
    Case("very-long-line-predict", predict(put("line.txt", "x" * 300_000 + "\n")), 0, "text,label", "out", keep=M),
    # ---------------------------------------------------------------- predict input
    Case("stdin-empty", predict(None), 2, "<stdin>: nothing on standard input", keep=M),
    Case("stdin-windows-line-ends", predict(None), 0, "text,label,p_neg,p_pos\ngood film,", "out", keep=M),
    Case("predict-binary", predict(put("b.txt", b"ok\n\x00\x01\x02")), 2, "b.txt: line 2, column 1: binary", keep=M),
    Case("predict-folder", predict(folder), 2, "is a folder, not a file", keep=M),
    Case("predict-latin-1", predict(put("l.txt", "café\n".encode("latin-1"))), 2, "line 1 is not valid UTF-8", keep=M),
    Case(
        "predict-text-column-missing",
        predict(put("p.csv", "review,stars\ngood,5\n"), "--text-column", "body"),
        2,
        "p.csv: column 'body' not found (columns: review, stars)",
        keep=M,
    ),
    Case(
        "predict-fails-earlier-output-intact",
        lambda p: [*predict(put("b.txt", b"\x00"))(p), "--output", p["prev"]],
        2,
        "binary data",
        keep=("m", "prev"),
    ),
    Case("predict-utf16-works", predict(put("u.txt", "good film\n\nbad\n".encode("utf-16"))), 0, ",,,\nbad,", "out"),
    Case(
        "evaluate-plot-under-a-file",
        lambda p: [*evaluate(put("g.tsv", GOOD))(p), "--plot", p["prev"] / "cm.png"],
        2,
        "is a file, not a folder",
        keep=("m", "prev"),
    ),
]
STDIN = {"stdin-empty": b"", "stdin-windows-line-ends": b"good film\r\n\r\nbad\r\n"}
WORKS: dict[str, Callable[[str, str], bool]] = {  # what the output of a case that works must hold
    "utf16-with-bom-works": lambda out, err: json.loads(out)["format"] == "auto",
    "long-text-train-warns-once": lambda out, err: (
        err.count("warning:") == 1 and "2 texts longer than --max-len 16 tokens (longest 5000)" in err
    ),
    "stdin-windows-line-ends": lambda out, err: out.count("\n") == 4,  # header + 3 rows, the empty one kept
    "very-long-line-predict": lambda out, err: out.count("\n") == 2,
    "long-text-predict-warns": lambda out, err: out.count("\n") == 4 and err.count("warning:") == 1,
}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture folder with ``max_len`` 8 (config only: the weights and their checksum stay)."""
    folder = tmp_path_factory.mktemp("classify") / "m"
    shutil.copytree(FIXTURE, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["config"]["max_len"] = 8
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classify_table(case: Case, model: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    prev = tmp_path / "earlier.csv"
    prev.write_text("an earlier output\n")
    places = {"tmp": tmp_path, "m": model, "prev": prev}
    if case.id in STDIN:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(STDIN[case.id])))
    out, err = run_case(case, places, capsys)
    if case.id in WORKS:
        assert WORKS[case.id](out, err), (out[:500], err)
    if case.code == 2:
        assert len(err) < 600, err  # never a wall of labels or columns


def test_table_size() -> None:
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


# -------------------------------------------------------------------------------- the Python API
def _train(data, valid=None):
    return lambda: lstmkit.train("classify", data, valid, None, quiet=True, epochs=1, hidden_size=4, embed_size=4)


API = [
    ("str-items", _train(["a\tpos", "b\tneg"]), "data: item 1: expected a (text, label) pair, got 'a\\tpos'"),
    ("two-char-strings", _train(["ab", "cd"]), "data: item 1: expected a (text, label) pair, got 'ab'"),
    ("triples", _train([("a", "x", 1)]), "data: item 1: expected a (text, label) pair"),
    ("not-a-list", _train(42), "data: expected a file path or a list of (text, label) pairs, got int"),
    ("a-dict", _train({"good": "pos"}), "got dict"),
    ("label-none", _train([("a", "x"), ("b", None)]), "data: item 2: the label must be a str or an int, got NoneType"),
    ("text-not-str", _train([(1, "x"), ("b", "y")]), "data: item 1: the text must be a str, got int"),
    ("empty-label", _train([("a", "x"), ("b", " ")]), "data: item 2: empty label"),
    ("empty-list", _train([]), "data: no examples"),
    ("one-label", _train([("a", "x"), ("b", "x")]), "data: needs at least 2 different labels"),
    (
        "valid-label-unseen",
        _train([("a", "x"), ("b", "y")], [("c", "z")]),
        "valid: item 1: label 'z' does not occur in the training data",
    ),
    ("missing-file", _train("/no/such.tsv"), "/no/such.tsv: file not found"),
]


@pytest.mark.parametrize(("name", "call", "fragment"), API, ids=[a[0] for a in API])
def test_python_api_bad_data(name, call, fragment) -> None:
    with pytest.raises(LstmkitError) as info:
        call()
    message = str(info.value)
    assert fragment in message and "\n" not in message and len(message) < 600, message


@pytest.fixture(scope="module")
def predictor(model: Path):
    return lstmkit.load(model)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda p: p.predict([None, "a"]), "input 1: expected a text (str), got NoneType"),
        (lambda p: p.predict(3), "input 1: expected a text (str), got int 3"),
        (lambda p: p.predict(["fine", b"bytes"]), "input 2: expected a text (str), got bytes"),
        (lambda p: p.predict_proba(["ok", 1.5]), "input 2: expected a text (str), got float"),
        (lambda p: p.evaluate(["ab", "cd"]), "data: item 1: expected a (text, label) pair, got 'ab'"),
        (lambda p: p.evaluate([("good", "meh")]), "data: item 1: label 'meh' is not one the model knows"),
        (lambda p: p.evaluate([]), "data: no examples"),
        (lambda p: p.predict("x", text_column=3), "text_column"),
        (lambda p: p.predict(Path("/")), "/: is a folder, not a file"),
    ],
)
def test_predictor_bad_input(predictor, call, fragment) -> None:
    with pytest.raises(LstmkitError) as info:
        call(predictor)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def test_predictor_one_item_rule_and_limit(predictor, capsys) -> None:
    assert predictor.predict_proba("great").shape == (1, 2)  # a str is ONE text, never its characters
    capsys.readouterr()
    one = predictor.predict(LONG)
    err = capsys.readouterr().err
    assert len(one) == 1 and one[0]["label"] in ("neg", "pos")
    assert err.count("warning:") == 1 and "longest 5000" in err
    # the cut text is classified as its first --max-len tokens
    assert one[0]["probabilities"] == predictor.predict("good " * 8)[0]["probabilities"]
