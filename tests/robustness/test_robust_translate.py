"""Robustness table of ``lstmkit translate``: bad parallel text through train (mostly ``--dry-run``, the
cheap way to the readers), evaluate and predict against the fixture model, and the Python API.

Every command case: exit code, message fragment, no traceback, exactly one ``error:`` line, nothing
half-written, earlier files byte-identical (harness.py). Cases with exit 0 check their output and
that a limit gives exactly one warning line.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import Case, put, run_case

import lstmkit
from lstmkit.errors import LstmkitError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "translate"
GOOD = "der hund sieht ein katze\tthe dog sees a cat\nein katze mag der hund\ta cat likes the dog\n"


@dataclass(frozen=True)
class TCase(Case):
    """A case with bytes on standard input and a check of (stdout, stderr) for the cases that work."""

    stdin: bytes | None = None
    check: Callable[[str, str], Any] | None = None


def train(data: Callable[[dict[str, Path]], Path] | str, *extra: Any, dry: bool = True):
    def argv(p: dict[str, Path]) -> list[Any]:
        d = data(p) if callable(data) else data
        return ["translate", "train", "--data", d, "--out", p["tmp"] / "o", *(["--dry-run"] if dry else []), *extra]

    return argv


def pair(cmd: str, src: str | bytes, tgt: str | bytes, *extra: Any):
    def argv(p: dict[str, Path]) -> list[Any]:
        s, t = put("x.de", src)(p), put("x.en", tgt)(p)
        where = ["--out", p["tmp"] / "o", "--dry-run"] if cmd == "train" else ["--model", p["m"]]
        return ["translate", cmd, "--source", s, "--target", t, *where, *extra]

    return argv


def evaluate(data: Callable[[dict[str, Path]], Path], *extra: Any):
    return lambda p: ["translate", "evaluate", "--model", p["m"], "--data", data(p), "--threads", "1", *extra]


def predict(data: Callable[[dict[str, Path]], Path] | None, *extra: Any):
    def argv(p: dict[str, Path]) -> list[Any]:
        return ["translate", "predict", "--model", p["m"], *(["--data", data(p)] if data else []), *extra]

    return argv


def one_warning(fragment: str) -> Callable[[str, str], None]:
    def check(out: str, err: str) -> None:
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 1 and fragment in warnings[0], err

    return check


def warnings_are(*fragments: str) -> Callable[[str, str], None]:
    def check(out: str, err: str) -> None:
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == len(fragments) and all(f in w for f, w in zip(fragments, warnings)), err

    return check


def lines_out(*expected: str) -> Callable[[str, str], None]:
    def check(out: str, err: str) -> None:
        assert out.split("\n")[:-1] == list(expected), out

    return check


def _old_model(p: dict[str, Path]) -> None:
    shutil.copytree(FIXTURE, p["tmp"] / "o")
    p["o"] = p["tmp"] / "o"


def _old_output(p: dict[str, Path]) -> None:
    (p["tmp"] / "prev.txt").write_text("an earlier translation\n")
    p["prev"] = p["tmp"] / "prev.txt"


LONG = " ".join(["der hund"] * 60_000)  # 120,000 tokens on one line (the model's --max-length is 100)
UTF16 = GOOD.encode("utf-16")  # with a byte-order mark

CASES = [
    # --- empty, whitespace-only and header-only files
    TCase("empty-file", train(put("e.tsv", "")), 2, "e.tsv: empty file"),
    TCase("whitespace-only", train(put("w.tsv", "  \n\t\n   \n")), 2, "w.tsv: empty file"),
    TCase("header-only", train(put("h.tsv", "source\ttarget\n")), 2, "h.tsv: only a header line (line 1)"),
    TCase(
        "header-is-skipped",
        evaluate(put("h.tsv", "Source\tTarget\n" + GOOD)),
        0,
        "sentences = 2, skipped empty pairs = 0",
        stream="out",
    ),
    TCase("no-pair-with-both-sides", train(put("s.tsv", "\tthe dog\nder hund\t \n")), 2, "no pair has text on both"),
    TCase("predict-empty-file", predict(put("e.txt", "")), 2, "e.txt: empty file"),
    TCase("predict-stdin-empty", predict(None), 2, "<stdin>: nothing on standard input", stdin=b""),
    TCase(
        "predict-blank-lines-stay",
        predict(put("b.txt", "der hund\n\n   \nein katze\n")),
        0,
        check=lambda out, err: len(out.split("\n")) == 5 and out.split("\n")[1:3] == ["", ""],
    ),
    # --- delimiters and ragged rows
    TCase("comma-separated", train(put("c.tsv", "ein hund,a dog\n")), 2, "line 1: expected source<TAB>target, found 1"),
    TCase("tab-in-a-sentence", train(put("t.tsv", "ein\thund\ta dog\n")), 2, "found 3 tab-separated field(s)"),
    TCase("ragged-line-3", train(put("r.tsv", GOOD + "kein tab\n")), 2, "r.tsv: line 3: expected source<TAB>"),
    TCase("evaluate-plain-text", evaluate(put("p.txt", "der hund\n")), 2, "two line-aligned files: --source/--target"),
    # --- encodings and binary files
    TCase(
        "latin-1",
        train(put("l.tsv", "größe\tsize\n".encode("latin-1")), dry=False),
        2,
        "l.tsv: line 1 is not valid UTF-8 (byte 0xf6 at column 3); save it as UTF-8",
    ),
    TCase(
        "utf-16-with-bom-works",
        evaluate(put("u.tsv", UTF16), "--json"),
        0,
        check=lambda out, err: json.loads(out)["bleu"] == 100.0 and json.loads(out)["sentences"] == 2,
    ),
    TCase("utf-16-broken", train(put("u.tsv", UTF16[:-1])), 2, "u.tsv: starts like UTF-16 but is not valid UTF-16"),
    TCase("utf-16-without-bom", train(put("v.tsv", GOOD.encode("utf-16-le"))), 2, "line 1, column 2: binary data"),
    TCase("nul-byte", predict(put("n.txt", "der\x00hund\n")), 2, "n.txt: line 1, column 4: binary data (a NUL byte)"),
    TCase("binary-file", train(put("b.tsv", bytes(range(256)) * 4)), 2, "b.tsv: line 1, column 1: binary data"),
    TCase("binary-without-nul", predict(put("b.txt", bytes(range(1, 256)) * 4)), 2, "b.txt: line 2 is not valid UTF-8"),
    TCase("predict-latin-1", predict(put("l.txt", "der hund\ngröße\n".encode("latin-1"))), 2, "l.txt: line 2 is not"),
    TCase(
        "utf-8-bom-works",
        evaluate(put("bom.tsv", b"\xef\xbb\xbf" + GOOD.encode())),
        0,
        "BLEU = 100.00",
        stream="out",
    ),
    TCase(
        "windows-line-ends-work",
        evaluate(put("crlf.tsv", GOOD.replace("\n", "\r\n")), "--json"),
        0,
        check=lambda out, err: json.loads(out)["bleu"] == 100.0 and json.loads(out)["sentences"] == 2,
    ),
    TCase(
        "predict-windows-line-ends",
        predict(put("crlf.txt", "der hund sieht ein katze\r\nein katze mag der hund\r\n")),
        0,
        check=lines_out("the dog sees a cat", "a cat likes the dog"),
    ),
    # --- names that are not files
    TCase("data-is-a-folder", train(put("d/", "")), 2, "is a folder; expected a TSV file, or PREFIX"),
    TCase(
        "target-is-a-folder",
        lambda p: ["translate", "train", "--source", put("a.de", "a\n")(p), "--target", put("d/", "")(p), "--out", "o"],
        2,
        "d: is a folder, not a file",
    ),
    TCase("predict-a-folder", predict(put("d/", "")), 2, "d: is a folder, not a file"),
    TCase("data-missing", train(lambda p: p["tmp"] / "nope"), 2, "nope: file not found (nor "),
    TCase("train-from-stdin", train("-"), 2, "--data -: only predict reads standard input"),
    # --- mismatched parallel files
    TCase("line-counts-differ", pair("train", "a\nb\nc\n", "a\nb\n"), 2, "has 3 lines but"),
    TCase("evaluate-line-counts-differ", pair("evaluate", "der hund\n", "the dog\na cat\n"), 2, "has 1 lines but"),
    TCase(
        "source-without-target",
        lambda p: ["translate", "train", "--source", put("a.de", "a\n")(p), "--out", p["tmp"] / "o"],
        2,
        "--source and --target must be given together",
    ),
    TCase(
        "data-and-source",
        lambda p: [*pair("train", "a\n", "b\n")(p), "--data", put("g.tsv", GOOD)(p)],
        2,
        "give --data or --source/--target, not both",
    ),
    TCase(
        "valid-counts-differ",
        lambda p: [
            *train(put("g.tsv", GOOD))(p),
            "--valid-source",
            put("v.de", "a\nb\n")(p),
            "--valid-target",
            put("v.en", "a\n")(p),
        ],
        2,
        "v.de has 2 lines but",
    ),
    # --- limits: --max-length (truncate, one warning), option ranges
    TCase(
        "predict-very-long-line",
        predict(put("long.txt", LONG + "\nder hund\n")),
        0,
        check=one_warning("1 sentence(s) longer than the model's --max-length (100 tokens) were truncated"),
    ),
    TCase(
        "train-over-max-length",
        train(
            put("g.tsv", GOOD * 3),
            *("--max-length", "3", "--epochs", "1", "--hidden-size", "2", "--embed-size", "2", "--quiet"),
            *("--tokenizer", "whitespace", "--valid-fraction", "0", "--threads", "1"),
            dry=False,
        ),
        0,
        check=one_warning("6 sentence pair(s) longer than --max-length 3 tokens were truncated to 3 tokens"),
    ),
    TCase(
        "train-warns-once-per-data-set",
        train(
            put("g.tsv", GOOD * 6),
            *("--max-length", "3", "--epochs", "1", "--hidden-size", "2", "--embed-size", "2", "--quiet"),
            *("--tokenizer", "whitespace", "--valid-fraction", "0.5", "--threads", "1", "--valid-beam", "1"),
            dry=False,
        ),
        0,
        check=warnings_are("g.tsv: 6 sentence pair(s) longer", "g.tsv (held out): 6 sentence pair(s) longer"),
    ),
    TCase(
        "evaluate-over-max-length",
        evaluate(put("long.tsv", f"{LONG}\tthe dog\n" + GOOD)),
        0,
        check=one_warning("truncated to 100 tokens (the first: "),
    ),
    TCase(
        "max-length-zero", train(put("g.tsv", GOOD), "--max-length", "0"), 2, "max_length (--max-length) must be >= 1"
    ),
    TCase("vocab-size-huge", train(put("g.tsv", GOOD), "--vocab-size", "99999999999"), 2, "must be <= 1000000"),
    TCase("max-ratio-huge", predict(put("g.txt", "der hund\n"), "--max-ratio", "1e308"), 2, "must be <= 100"),
    TCase("max-ratio-negative", predict(put("g.txt", "der hund\n"), "--max-ratio", "-3"), 2, "must be > 0, got -3"),
    TCase("beam-huge", predict(put("g.txt", "der hund\n"), "--beam", "100000"), 2, "beam (--beam) must be <= 1000"),
    TCase("batch-size-zero", predict(put("g.txt", "der hund\n"), "--batch-size", "0"), 2, "must be >= 1, got 0"),
    TCase("nbest-over-beam", predict(put("g.txt", "x\n"), "--nbest", "3", "--beam", "2"), 2, "must be <= --beam (2)"),
    TCase("alpha-inf", predict(put("g.txt", "der hund\n"), "--alpha", "inf"), 2, "alpha (--alpha) must be a finite"),
    TCase(
        "plot-index-out-of-range",
        predict(put("g.txt", "der hund\n"), "--plot-attention", "a.png", "--plot-index", "4"),
        2,
        "plot_index (--plot-index) 4: no such non-empty input line",
    ),
    TCase(
        "plot-into-a-folder",
        lambda p: [*predict(put("g.txt", "der hund\n"))(p), "--plot-attention", put("d/", "")(p)],
        2,
        "--plot-attention",
        check=lambda out, err: "d: is a folder, not a PNG file" in err,
    ),
    # --- words the model never saw
    TCase(
        "unknown-words",
        predict(put("u.txt", "zzz yyy\nder hund\n")),
        0,
        check=one_warning("1 sentence(s) hold no token the model knows (the first: input 1)"),
    ),
    # --- nothing lost: an earlier model and an earlier output stay byte-identical
    TCase(
        "overwrite-with-bad-data",
        lambda p: [*train(put("l.tsv", b"\xff\tx\n"), "--overwrite", dry=False)(p)],
        2,
        "not valid UTF-8",
        setup=_old_model,
        keep=("o",),
    ),
    TCase(
        "predict-output-kept",
        predict(put("l.txt", b"\xfe\n"), "--output", "prev.txt"),
        2,
        "not valid UTF-8",
        setup=_old_output,
        keep=("prev",),
    ),
]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)  # relative names (a.png, prev.txt) land in the test's folder
    return {"tmp": tmp_path, "m": FIXTURE}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_translate_command_line(case: TCase, places, capsys, monkeypatch):
    if case.stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8"))
    keep = ("m", *case.keep)  # the model folder never changes
    out, err = run_case(
        Case(case.id, case.argv, case.code, case.fragment, case.stream, case.setup, keep), places, capsys
    )
    if case.check is not None:
        assert case.check(out, err) is not False, (out, err)


# ------------------------------------------------------------------------------------------ Python API
@pytest.fixture(scope="module")
def mt():
    return lstmkit.load(FIXTURE)


def _gen():
    yield ("ein hund", "a dog")


TRAIN_DATA = [
    ("none", None, "got NoneType"),
    ("int", 123, "got int"),
    ("empty-list", [], "no sentence pairs (an empty list)"),
    ("bytes", b"ein hund\ta dog", "got bytes"),
    ("dict", {"ein hund": "a dog"}, "got dict"),
    ("generator", _gen(), "got generator"),
    ("three-sides", [("a", "b", "c")], "item 1 is not a (source, target) pair of strings"),
    ("none-target", [("a", "b"), ("a", None)], "item 2 is not a (source, target) pair"),
    ("bare-strings", ["ein hund\ta dog"], "item 1 is not a (source, target) pair"),
    ("numbers", [1, 2], "item 1 is not a (source, target) pair of strings: 1"),
    ("long-item-is-shortened", [("x" * 5000, 1)], "item 1 is not a (source, target) pair"),
    ("two-sentences", ["ein hund", "a dog"], "a pair of strings is read as (source file, target file)"),
    ("only-empty-pairs", [("", "a"), ("b", "  ")], "no pair has text on both sides"),
]


@pytest.mark.parametrize(("data", "fragment"), [t[1:] for t in TRAIN_DATA], ids=[t[0] for t in TRAIN_DATA])
def test_train_in_memory_data(data, fragment):
    with pytest.raises(LstmkitError) as info:
        lstmkit.train("translate", data=data, epochs=1, quiet=True)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and len(msg) < 600, msg


PREDICTOR_CALLS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("predict-none", lambda mt: mt.predict(None), "input 1: expected a source sentence (a string), got NoneType"),
    ("predict-numbers", lambda mt: mt.predict(["der hund", 2]), "input 2: expected a source sentence"),
    ("predict-bytes", lambda mt: mt.predict(b"der hund"), "got bytes"),
    ("predict-dict", lambda mt: mt.predict({"der": "hund"}), "got dict"),
    ("predict-folder", lambda mt: mt.predict(FIXTURE), "is a folder, not a file"),
    ("predict-beam-zero", lambda mt: mt.predict("der hund", beam=0), "beam (--beam) must be >= 1"),
    ("predict-unknown-option", lambda mt: mt.predict("der hund", colour=1), "unknown setting 'colour'"),
    ("translate-batch-size-zero", lambda mt: mt.translate(["der hund"], batch_size=0), "batch_size (--batch-size)"),
    ("translate-max-ratio-negative", lambda mt: mt.translate(["der hund"], max_ratio=-3), "max_ratio (--max-ratio)"),
    ("translate-nbest-over-beam", lambda mt: mt.translate("der hund", beam=2, nbest=3), "must be <= --beam (2)"),
    ("translate-a-number", lambda mt: mt.translate(5), "expected a source sentence or a list of them, got int"),
    ("decode-options", lambda mt: mt.decode_options(beam=1, nbest=2), "nbest (--nbest) must be <= --beam (1)"),
    ("evaluate-none", lambda mt: mt.evaluate(None), "got NoneType"),
    ("evaluate-strings", lambda mt: mt.evaluate(["der hund"]), "item 1 is not a (source, target) pair"),
    ("evaluate-beam-huge", lambda mt: mt.evaluate([("der hund", "the dog")], beam=10**6), "must be <= 1000"),
    ("step-labels-number", lambda mt: mt.step_labels(5), "got int"),
]


@pytest.mark.parametrize(("call", "fragment"), [c[1:] for c in PREDICTOR_CALLS], ids=[c[0] for c in PREDICTOR_CALLS])
def test_predictor_refuses_bad_calls(mt, call, fragment):
    with pytest.raises(LstmkitError) as info:
        call(mt)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and len(msg) < 600, msg


def test_one_string_is_one_sentence(mt):
    assert len(mt.translate("der hund sieht ein katze")) == 1
    assert mt.translate("der hund sieht ein katze", beam=3)[0][0].text == "the dog sees a cat"
    assert [o["text"] for o in mt.predict(("der hund sieht ein katze", ""))] == ["the dog sees a cat", ""]
