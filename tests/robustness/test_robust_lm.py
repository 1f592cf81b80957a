"""Robustness table of ``lstmkit lm``: bad text files (empty, whitespace only, folders, binary, wrong
encodings, NUL bytes), settings out of range, prompts beyond ``--max-prompt``, standard input with
nothing on it, and the Python API with in-memory data of the wrong shape.

Every command case runs through ``harness.run_case`` (exit code, message fragment, no traceback, one
``error:`` line, nothing half-written, the model folder byte-identical). Cases that must WORK (UTF-16
with a byte-order mark, Windows line ends, empty prompt lines, a tiny temperature, long prompts) exit 0
and check their output against the Python API on the plain UTF-8 version of the same input.
"""

from __future__ import annotations

import io
import json
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
from lstmkit.tasks.lm.config import MAX_LENGTH

SENTENCES = ["the cat sat on the mat", "the dog ate the bone", "a bird sang in the tree"]
_RNG = random.Random(0)
GOOD = "\n".join(_RNG.choice(SENTENCES) for _ in range(60)) + "\n"
ONE = ("--threads", "1")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word-level model trained once for the module."""
    folder = tmp_path_factory.mktemp("lm") / "m"
    lstmkit.train(
        "lm",
        GOOD.splitlines(),
        out=folder,
        quiet=True,
        embed_size=8,
        hidden_size=8,
        num_layers=1,
        dropout=0.0,
        bptt=8,
        epochs=2,
        batch_size=4,
        lr=0.05,
    )
    return folder


@pytest.fixture
def places(tmp_path: Path, model: Path) -> dict[str, Path]:
    return {"tmp": tmp_path, "m": model}


# ---------------------------------------------------------------------------------------------- helpers


def resolve(extra: tuple[Any, ...], p: dict[str, Path]) -> list[Any]:
    """Extra arguments, files among them (callables of the places) made."""
    return [e(p) if callable(e) else e for e in extra]


def train(data: Callable[[dict[str, Path]], Any], *extra: Any, dry: bool = True) -> Callable:
    """``lm train --data DATA --out tmp/o EXTRA``: a dry run (it reads every file), or a real run of
    one epoch of a tiny network."""
    run = ("--dry-run",) if dry else ("--epochs", "1", "--quiet", "--embed-size", "4", "--hidden-size", "4")
    return lambda p: ["lm", "train", "--data", data(p), "--out", p["tmp"] / "o", *run, *ONE, *resolve(extra, p)]


def good(p: dict[str, Path]) -> Path:
    return put("good.txt", GOOD)(p)


def evaluate(data: Callable[[dict[str, Path]], Any], *extra: Any) -> Callable:
    return lambda p: ["lm", "evaluate", "--model", p["m"], "--data", data(p), *ONE, *resolve(extra, p)]


def predict(data: Callable[[dict[str, Path]], Any] | str, *extra: Any) -> Callable:
    return lambda p: [
        "lm",
        "predict",
        "--model",
        p["m"],
        "--data",
        data if isinstance(data, str) else data(p),
        "--length",
        "4",
        *ONE,
        *resolve(extra, p),
    ]


def prompts(text: str, name: str = "prompts.txt") -> Callable[[dict[str, Path]], Path]:
    return put(name, text)


@dataclass(frozen=True)
class Row:
    """One case of the table: the command ``case``, standard input, and for the cases that work a
    check of what they printed: ``check(out, err, places)``."""

    case: Case
    stdin: bytes | None = None
    check: Callable[[str, str, dict[str, Path]], None] | None = None


def same_metrics_as(text: str) -> Callable[[str, str, dict[str, Path]], None]:
    """``evaluate --json`` printed what the Python API gives for the UTF-8 ``text``."""

    def check(out: str, err: str, p: dict[str, Path]) -> None:
        assert json.loads(out) == lstmkit.load(p["m"]).evaluate(text.splitlines())

    return check


def same_predictions_as(lines: list[str]) -> Callable[[str, str, dict[str, Path]], None]:
    """``predict --json`` printed one greedy continuation per prompt line, as the API gives for ``lines``."""

    def check(out: str, err: str, p: dict[str, Path]) -> None:
        assert json.loads(out) == lstmkit.load(p["m"]).predict(lines, length=4)

    return check


def one_warning(fragment: str) -> Callable[[str, str, dict[str, Path]], None]:
    def check(out: str, err: str, p: dict[str, Path]) -> None:
        warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 1 and fragment in warnings[0], err

    return check


LONG_PROMPT = " ".join(["the cat sat on the mat"] * 500)  # 3000 words: over --max-prompt 2000
UTF16 = GOOD.encode("utf-16")  # with a byte-order mark

# ---------------------------------------------------------------------------------------------- the table
ROWS = [
    # ---- empty, header-only, whitespace-only, missing files
    Row(Case("train-empty-file", train(put("e.txt", "")), 2, "e.txt: empty file")),
    Row(Case("train-whitespace-only", train(put("w.txt", "  \n\t\n   \n")), 2, "w.txt: empty file")),
    Row(Case("train-too-little-text", train(put("a.txt", "a\n")), 2, "too short to split")),
    Row(Case("train-valid-empty", train(good, "--valid", put("v.txt", "")), 2, "v.txt: empty file")),
    Row(Case("train-test-missing", train(good, "--test", "/no/such.txt"), 2, "such.txt: file not found")),
    Row(Case("train-data-missing", train(lambda p: p["tmp"] / "none.txt"), 2, "none.txt: file not found")),
    Row(Case("train-data-is-a-folder", train(folder), 2, "a_folder: is a folder, not a file")),
    Row(Case("train-valid-is-a-folder", lambda p: [*train(good)(p), "--valid", folder(p)], 2, "is a folder")),
    Row(Case("train-stdin-empty", train(lambda p: "-"), 2, "nothing on standard input"), stdin=b""),
    # ---- encodings and binary files
    Row(Case("train-binary-file", train(put("b.bin", bytes(range(256)) * 8)), 2, "binary data (a NUL byte)")),
    Row(Case("train-nul-byte-in-text", train(put("n.txt", "the cat\nthe\x00dog\n")), 2, "line 2, column 4")),
    Row(Case("train-latin1", train(put("l.txt", "the café\n".encode("latin-1"))), 2, "line 1 is not valid UTF-8")),
    Row(
        Case("train-utf16-without-bom", train(put("u.txt", GOOD.encode("utf-16-le"))), 2, "NUL byte"),
    ),
    Row(Case("train-utf16-bom-works", train(put("u16.txt", UTF16)), 0, '"level": "word"', stream="out")),
    Row(Case("train-crlf-works", train(put("crlf.txt", GOOD.replace("\n", "\r\n"))), 0, '"bptt"', stream="out")),
    Row(Case("train-very-long-line-works", train(put("long.txt", "the cat " * 100_000 + "\n")), 0)),
    Row(Case("train-stdin-works", train(lambda p: "-"), 0, '"data": "-"', stream="out"), stdin=GOOD.encode()),
    # ---- settings out of range (checked where they are declared)
    Row(Case("train-bptt-zero", train(good, "--bptt", "0"), 2, "bptt (--bptt) must be >= 1, got 0")),
    Row(Case("train-eval-batch-zero", train(good, "--eval-batch-size", "0"), 2, "eval_batch_size (--eval-batch-size)")),
    Row(Case("train-dropout-in-one", train(good, "--dropout-in", "1"), 2, "dropout_in (--dropout-in) must be < 1")),
    Row(Case("train-dropout-emb-negative", train(good, "--dropout-emb", "-0.5"), 2, "must be >= 0")),
    Row(Case("train-weight-drop-one", train(good, "--weight-drop", "1"), 2, "weight_drop (--weight-drop) must be < 1")),
    Row(Case("train-zoneout-one", train(good, "--zoneout", "1.5"), 2, "zoneout (--zoneout) must be < 1")),
    Row(Case("train-split-over-one", train(good, "--split", "0.6,0.6"), 2, "summing to <= 1")),
    Row(Case("train-cutoffs-decreasing", train(good, "--cutoffs", "50,10"), 2, "must be increasing")),
    Row(Case("train-max-vocab-zero", train(good, "--max-vocab", "0"), 2, "max_vocab (--max-vocab) must be >= 1")),
    Row(Case("train-epochs-huge", train(good, "--epochs", "1e999"), 2, "epochs (--epochs) must be an integer")),
    Row(Case("train-lr-overflows", train(good, "--lr", "1e999"), 2, "lr (--lr) must be a finite number")),
    Row(
        Case(
            "train-network-too-big",
            train(good, "--hidden-size", "65536", "--num-layers", "64", dry=False),
            2,
            "the network does not fit in memory",
        )
    ),
    Row(Case("train-embed-size-huge", train(good, "--embed-size", "1e11", dry=False), 2, "must be <= 65536")),
    Row(Case("train-bidirectional", train(good, "--bidirectional"), 2, "unrecognized arguments: --bidirectional")),
    # ---- evaluate
    Row(Case("evaluate-empty-file", evaluate(put("e.txt", "")), 2, "e.txt: empty file", keep=("m",))),
    Row(Case("evaluate-folder", evaluate(folder), 2, "is a folder", keep=("m",))),
    Row(Case("evaluate-binary", evaluate(put("b.bin", b"\x00\x01\x02" * 50)), 2, "NUL byte", keep=("m",))),
    Row(Case("evaluate-batch-size-zero", evaluate(good, "--batch-size", "0"), 2, "must be >= 1", keep=("m",))),
    Row(Case("evaluate-no-model", lambda p: ["lm", "evaluate", "--model", p["tmp"] / "x", "--data", good(p)], 2)),
    Row(
        Case("evaluate-utf16-bom-works", evaluate(put("u16.txt", UTF16), "--json"), 0, keep=("m",)),
        check=same_metrics_as(GOOD),
    ),
    Row(
        Case("evaluate-crlf-works", evaluate(put("c.txt", GOOD.replace("\n", "\r\n")), "--json"), 0, keep=("m",)),
        check=same_metrics_as(GOOD),
    ),
    Row(
        Case("evaluate-unknown-words-warn", evaluate(put("z.txt", "zebra yak quail\n" * 5)), 0, keep=("m",)),
        check=one_warning("20 tokens are not in the model's vocabulary"),
    ),
    # ---- predict
    Row(Case("predict-stdin-empty", predict("-"), 2, "<stdin>: nothing on standard input", keep=("m",)), stdin=b""),
    Row(Case("predict-empty-file", predict(prompts("")), 2, "prompts.txt: empty file", keep=("m",))),
    Row(Case("predict-folder", predict(folder), 2, "is a folder", keep=("m",))),
    Row(Case("predict-latin1", predict(put("l.txt", b"caf\xe9\n")), 2, "line 1 is not valid UTF-8", keep=("m",))),
    Row(Case("predict-length-negative", predict(prompts("the\n"), "--length", "-1"), 2, "must be >= 0")),
    Row(
        Case(
            "predict-length-over-limit",
            predict(prompts("the\n"), "--length", str(MAX_LENGTH + 1)),
            2,
            f"length (--length) must be <= {MAX_LENGTH}",
        )
    ),
    Row(Case("predict-max-prompt-zero", predict(prompts("the\n"), "--max-prompt", "0"), 2, "--max-prompt) must be >=")),
    Row(Case("predict-seed-huge", predict(prompts("the\n"), "--seed", str(2**70)), 2, "seed (--seed) must be <=")),
    Row(Case("predict-top-p-zero", predict(prompts("the\n"), "--top-p", "0"), 2, "top_p (--top-p) must be > 0")),
    Row(
        Case("predict-output-is-a-folder", lambda p: [*predict(prompts("the\n"))(p), "--output", folder(p)], 2),
    ),
    Row(
        Case("predict-stdin-works", predict("-", "--json"), 0, keep=("m",)),
        stdin=b"the cat\n\na bird\n",
        check=same_predictions_as(["the cat", "", "a bird"]),
    ),
    Row(
        Case("predict-utf16-bom-works", predict(put("p16.txt", "the cat\n\na bird\n".encode("utf-16")), "--json"), 0),
        check=same_predictions_as(["the cat", "", "a bird"]),
    ),
    Row(
        Case("predict-crlf-works", predict(prompts("the cat\r\n\r\na bird\r\n"), "--json"), 0),
        check=same_predictions_as(["the cat", "", "a bird"]),
    ),
    Row(Case("predict-tiny-temperature-works", predict(prompts("the\n"), "--temperature", "1e-310"), 0)),
    Row(
        Case("predict-long-prompt-cut-with-one-warning", predict(prompts(LONG_PROMPT + "\nthe\n"), "--json"), 0),
        check=one_warning("1 of 2 prompts are longer than --max-prompt 2000 tokens: each keeps its last 2000"),
    ),
    Row(
        Case("predict-unknown-words-one-warning", predict(prompts("zebra\nyak\nthe cat\n")), 0),
        check=one_warning("2 of 3 prompts hold tokens unknown to the model"),
    ),
    # ---- generate
    Row(
        Case(
            "generate-long-prompt-warns",
            lambda p: ["lm", "generate", "--model", p["m"], "--prompt", LONG_PROMPT, "--length", "2", *ONE],
            0,
            "warning: prompt: 3000 tokens, longer than --max-prompt 2000",
        )
    ),
    Row(
        Case(
            "generate-max-prompt-zero",
            lambda p: ["lm", "generate", "--model", p["m"], "--max-prompt", "0", *ONE],
            2,
            "max_prompt (--max-prompt) must be >= 1",
        )
    ),
    # ---- inspect (the lm's sample)
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
def test_lm_table(row: Row, places: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    if row.stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(row.stdin)))
    out, err = run_case(row.case, places, capsys)
    if row.check is not None:
        row.check(out, err, places)


def test_the_table_is_big_enough() -> None:
    assert len(ROWS) + len(API_CASES) >= 25 and len({r.case.id for r in ROWS}) == len(ROWS)


# ---------------------------------------------------------------------------------------------- Python API
def _predictor(folder: Path) -> Any:
    return lstmkit.load(folder)


API_CASES: list[tuple[str, Callable[[Any], Any], type[LstmkitError], str]] = [
    ("train-list-with-int", lambda p: lstmkit.train("lm", ["the cat", 3]), DataError, "data: item 2 is int"),
    ("train-token-lists", lambda p: lstmkit.train("lm", [["the", "cat"]]), DataError, "item 1 is list"),
    ("train-dict", lambda p: lstmkit.train("lm", {"text": "the cat"}), DataError, "got dict"),
    ("train-bytes", lambda p: lstmkit.train("lm", b"the cat"), DataError, "got bytes"),
    ("train-empty-list", lambda p: lstmkit.train("lm", []), DataError, "too little text"),
    ("train-string-is-a-path", lambda p: lstmkit.train("lm", "the cat sat"), DataError, "the cat sat: file not found"),
    (
        "train-valid-bad",
        lambda p: lstmkit.train("lm", GOOD.splitlines(), [None]),
        DataError,
        "valid: item 1 is NoneType",
    ),
    ("predict-int", lambda p: p.predict(3), DataError, "input 1: expected a prompt (a string), got int"),
    ("predict-bytes", lambda p: p.predict(b"the cat"), DataError, "got bytes"),
    ("predict-none-in-list", lambda p: p.predict(["the", None]), DataError, "input 2: expected a prompt"),
    ("predict-length-negative", lambda p: p.predict("the", length=-1), ConfigError, "length (--length) must be"),
    ("predict-unknown-option", lambda p: p.predict("the", lenght=3), ConfigError, "did you mean length?"),
    ("predict-seed-huge", lambda p: p.predict("the", seed=2**70), ConfigError, "seed (--seed) must be <="),
    ("generate-int", lambda p: p.generate(3), DataError, "prompt: expected a prompt (a string), got int"),
    ("generate-length-negative", lambda p: p.generate("the", length=-2), ConfigError, "must be >= 0"),
    ("generate-top-k-negative", lambda p: p.generate("the", top_k=-1), ConfigError, "top_k (--top-k)"),
    ("evaluate-int", lambda p: p.evaluate(3), DataError, "expected a text file (a path) or a list of lines"),
    ("evaluate-list-with-int", lambda p: p.evaluate(["the cat", 3]), DataError, "item 2 is int"),
    ("evaluate-batch-zero", lambda p: p.evaluate(GOOD.splitlines(), batch_size=0), ConfigError, "must be >= 1"),
    ("evaluate-tokens-string", lambda p: p.evaluate_tokens("the cat"), DataError, "expected a list of tokens"),
    ("evaluate-tokens-batch", lambda p: p.evaluate_tokens(["a", "b"], batch_size=-3), ConfigError, "must be >= 1"),
    ("evaluate-tokens-one", lambda p: p.evaluate_tokens(["the"]), DataError, "too little text"),
    ("trace-gates-int", lambda p: p.trace_gates(3), DataError, "sample: expected a prompt"),
]


@pytest.mark.parametrize(("call", "error", "fragment"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_python_api_refuses_bad_shapes(call, error, fragment, model: Path) -> None:
    """In-memory data and options of the wrong shape: one-line LstmkitError naming the item, never a
    Python exception from deep inside (and no training starts)."""
    with pytest.raises(error) as info:
        call(_predictor(model))
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and len(msg) < 600, msg


# ---------------------------------------------------------------------------------------------- limits
def test_a_long_prompt_keeps_its_last_max_prompt_tokens(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-prompt: the continuation of a cut prompt is that of its last N tokens; one warning line."""
    p = _predictor(model)
    long = " ".join(["a bird sang in the tree"] * 10)  # 60 words
    capsys.readouterr()
    cut = p.predict([long, "the"], length=5, max_prompt=12)
    assert cut[0] == p.predict(" ".join(long.split()[-12:]), length=5)[0]
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "1 of 2 prompts are longer than --max-prompt 12" in err
    assert p.predict([long, "the"], length=5, max_prompt=60) == [p.predict(long, length=5)[0], cut[1]]


def test_inspect_labels_are_the_steps_traced(model: Path) -> None:
    """step_labels names every step trace_gates runs: <eos> at line breaks, an empty sample, a long one."""
    p = _predictor(model)
    for sample in ("the cat\nsat on\nthe mat", "", "the " * 3000, "a\r\nb"):
        labels = p.step_labels(sample)
        steps = p.trace_gates(sample)[0].i.shape[1]
        assert len(labels) == steps, (sample[:20], labels[:5], steps)
    assert p.step_labels("the cat\nsat") == ["the", "cat", "<eos>", "sat"]
