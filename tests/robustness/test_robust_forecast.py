"""Robustness table of ``lstmkit forecast``: bad tables for train (``--dry-run`` reaches the readers),
evaluate, predict and backtest, the --max-rows limit, and bad in-memory data through the Python API.

Each CLI case (see harness.py): exit code, message fragment, no traceback, one ``error:`` line,
nothing half-written, earlier files byte-identical. Cases that should work are cases too (exit 0,
output checked). The model is a copy of the fixture folder (site x/y, date, temp, load; lookback 12,
horizon 3, quantiles 0.1/0.5/0.9).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness import Case, folder, put, run_case

import lstmkit
from lstmkit.errors import LstmkitError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "forecast"
HEADER = "site,date,temp,load"


def rows(n: int = 60, sites: str = "xy") -> list[str]:
    """Data rows of the fixture's columns: ``n`` hourly rows per site."""
    out = []
    for s in sites:
        for i in range(n):
            t = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=i)
            out.append(f"{s},{t:%Y-%m-%d %H:%M:%S},{20 + 3 * math.sin(i / 4):.3f},{10 + math.sin(i / 5):.3f}")
    return out


def table(edit: Callable[[list[str]], None] | None = None, header: str = HEADER, n: int = 60) -> str:
    """The CSV text; ``edit`` changes the list of data rows (index 0 is file line 2) in place."""
    body = rows(n)
    if edit is not None:
        edit(body)
    return header + "\n" + "\n".join(body) + "\n"


def cell(line: int, value: str, column: int = 3) -> Callable[[list[str]], None]:
    """An edit: the cell of file line ``line`` in ``column`` (0-based) becomes ``value``."""

    def edit(body: list[str]) -> None:
        fields = body[line - 2].split(",")
        fields[column] = value
        body[line - 2] = ",".join(fields)

    return edit


GOOD = put("good.csv", table())
SETTINGS = ["--lookback", "8", "--horizon", "2", "--time-column", "date", "--series-column", "site"]


def train(data: Callable[[dict[str, Path]], Path], *extra: object):
    return lambda p: ["forecast", "train", "--data", data(p), "--out", p["tmp"] / "o", "--dry-run", *SETTINGS, *extra]


def evaluate(data: Callable[[dict[str, Path]], Path], *extra: object):
    return lambda p: ["forecast", "evaluate", "--model", p["m"], "--data", data(p), *extra]


def predict(data: Callable[[dict[str, Path]], Path] | None, *extra: object):
    return lambda p: ["forecast", "predict", "--model", p["m"], "--data", data(p) if data else "-", *extra]


def backtest(data: Callable[[dict[str, Path]], Path], *extra: object):
    return lambda p: [
        "forecast",
        "backtest",
        "--model",
        p["m"],
        "--data",
        data(p),
        "--output",
        p["tmp"] / "b.csv",
        *extra,
    ]


M = ("m",)
CASES = [
    # ---------------------------------------------------------------- empty and header-only files
    Case("empty-file", train(put("e.csv", "")), 2, "e.csv: file is empty"),
    Case("whitespace-only", train(put("w.csv", " \n\n  \n")), 2, "w.csv: file is empty"),
    Case("header-only", train(put("h.csv", HEADER + "\n")), 2, "h.csv: no data rows (only the header)"),
    Case("header-only-predict", predict(put("h.csv", HEADER + "\n")), 2, "no data rows", keep=M),
    # ---------------------------------------------------------------- delimiters and columns
    Case("semicolons", train(put("s.csv", table().replace(",", ";"))), 2, "the header is one column holding ';'s"),
    Case("tabs", train(put("t.csv", table().replace(",", "\t"))), 2, "the header is one column holding tabs"),
    Case(
        "duplicate-column",
        train(put("d.csv", table(header="site,date,load,load"))),
        2,
        "d.csv: column 'load' appears twice (columns 3 and 4)",
    ),
    Case(
        "unnamed-column", train(put("u.csv", table(header="site,date,,load"))), 2, "column 3 of the header has no name"
    ),
    Case("target-missing", train(GOOD, "--target", "OT"), 2, "good.csv: column 'OT' not found (columns: site, date"),
    Case("time-column-missing", train(GOOD, "--time-column", "when"), 2, "column 'when' not found"),
    Case(
        "target-is-time-column", train(GOOD, "--target", "date"), 2, "cannot hold the time or series-id column 'date'"
    ),
    Case(
        "no-numeric-column",
        train(put("n.csv", "site,date\n" + "\n".join(r.rsplit(",", 2)[0] for r in rows()) + "\n")),
        2,
        "no numeric column to forecast; name the target with --target",
    ),
    Case(
        "ragged-row",
        train(put("r.csv", table(lambda b: b.__setitem__(9, b[9] + ",7")))),
        2,
        "r.csv: line 11 has 5 fields, the header has 4",
    ),
    Case(
        "predict-missing-column",
        predict(
            put(
                "p.csv",
                table(
                    lambda b: [b.__setitem__(i, r.rsplit(",", 2)[0] + ",1") for i, r in enumerate(b)], "site,date,load"
                ),
            )
        ),
        2,
        "p.csv: column 'temp' not found (columns: site, date, load)",
        keep=M,
    ),
    Case(
        "predict-extra-column-ignored",
        predict(
            put("x.csv", table(lambda b: [b.__setitem__(i, r + ",5") for i, r in enumerate(b)], HEADER + ",extra"))
        ),
        0,
        "site,date,load,load_q0.1",
        "out",
        keep=M,
    ),
    # ---------------------------------------------------------------- encodings, binary, folders
    Case(
        "latin-1",
        train(put("l.csv", table(cell(5, "zürich", 0)).encode("latin-1"))),
        2,
        "l.csv: line 5 is not valid UTF-8 (byte 0xfc at column 2); save it as UTF-8",
    ),
    Case("binary", train(put("b.csv", b"site,date\n" + bytes(range(256)))), 2, "b.csv: line 2, column 1: binary data"),
    Case("folder", train(folder), 2, "a_folder: is a folder, not a file"),
    Case("missing-file", train(lambda p: p["tmp"] / "none.csv"), 2, "none.csv: file not found"),
    Case("corrupt-parquet", train(put("c.parquet", b"PAR1 not really")), 2, "c.parquet: cannot read as Parquet"),
    Case("utf16-with-bom-works", train(put("u16.csv", table().encode("utf-16"))), 0, '"max_rows": 1000000', "out"),
    Case("windows-line-ends-work", train(put("crlf.csv", table().replace("\n", "\r\n"))), 0, '"lookback": 8', "out"),
    Case(
        "utf16-predict-works",
        predict(put("u16.csv", table().encode("utf-16"))),
        0,
        "x,2024-01-03 12:00:00",
        "out",
        keep=M,
    ),
    # ---------------------------------------------------------------- values
    Case(
        "inf", train(put("i.csv", table(cell(12, "inf")))), 2, "i.csv: column 'load' line 12: value inf is not finite"
    ),
    Case(
        "minus-infinity",
        train(put("i.csv", table(cell(7, "-Infinity")))),
        2,
        "column 'load' line 7: value -inf is not finite",
    ),
    Case("huge", train(put("h.csv", table(cell(9, "1e39")))), 2, "line 9: value 1e+39 is too large (beyond float32"),
    Case(
        "nan-needs-fill", train(put("m.csv", table(cell(9, "")))), 2, "1 missing values (first: column 'load' line 9)"
    ),
    Case("nan-with-fill-works", train(put("m.csv", table(cell(9, ""))), "--fill", "interpolate"), 0, '"fill"', "out"),
    Case(
        "stray-text-in-the-target",  # the default target is still the last number column, and the cell is named
        train(put("a.csv", table(cell(30, "n/a?")))),
        2,
        "a.csv: column 'load' line 30: non-numeric value 'n/a?'",
    ),
    Case(
        "very-long-cell",
        train(put("v.csv", table(cell(4, "7" * 200_000)))),
        2,
        "column 'load' line 4: value inf is not finite",
    ),
    Case(
        "bad-time",
        train(put("t.csv", table(cell(20, "yesterday", 1)))),
        2,
        "line 20: cannot parse 'yesterday' as a time",
    ),
    Case("empty-time", train(put("t.csv", table(cell(20, "", 1)))), 2, "column 'date' line 20: empty time"),
    Case("duplicate-time", train(put("t.csv", table(cell(6, "2024-01-01 03:00:00", 1)))), 2, "duplicated timestamp"),
    Case("empty-series-id", train(put("s.csv", table(cell(15, "", 0)))), 2, "column 'site' line 15: empty series id"),
    Case(
        "series-too-short",
        train(put("s.csv", table(n=9))),
        2,
        "series x has 9 rows, fewer than lookback + horizon = 10",
    ),
    Case("split-leaves-no-window", train(GOOD, "--split", "8,20,20"), 2, "good.csv: the train split has no window"),
    Case("valid-given", lambda p: [*train(GOOD)(p), "--valid", GOOD(p)], 2, "--valid: forecast takes its validation"),
    Case(
        "test-file-checked",
        lambda p: [*train(GOOD)(p), "--test", put("i.csv", table(cell(3, "inf")))(p)],
        2,
        "i.csv: column 'load' line 3: value inf is not finite",
    ),
    # ---------------------------------------------------------------- limits (--max-rows)
    Case("max-rows-warns-and-keeps-the-last", train(GOOD, "--max-rows", "40"), 0, "2 series longer than --max-rows 40"),
    Case("max-rows-below-a-window", train(GOOD, "--max-rows", "9"), 2, "max_rows (--max-rows) leaves no window"),
    Case(
        "max-rows-of-the-model-at-predict",
        lambda p: predict(put("long.csv", table(n=300)))({**p, "m": p["capped"]}),
        0,
        "warning: long.csv: 2 series longer than --max-rows 100 (longest 300 rows): kept the last 100 rows",
        keep=("capped",),
    ),
    # ---------------------------------------------------------------- evaluate / predict / backtest
    Case(
        "evaluate-inf-json",
        evaluate(put("i.csv", table(cell(40, "inf"))), "--json"),
        2,
        "value inf is not finite",
        keep=M,
    ),
    Case(
        "evaluate-unseen-series",
        evaluate(put("z.csv", table().replace("\ny,", "\nz,"))),
        2,
        "z.csv: series 'z' was not seen in training (1 such series; the model knows x, y)",
        keep=M,
    ),
    Case(
        "evaluate-too-short-for-a-split",
        evaluate(put("s.csv", table(n=20))),
        2,
        "s.csv: the train split has no window of lookback 12 + horizon 3",
        keep=M,
    ),
    Case("evaluate-works", evaluate(GOOD, "--json"), 0, '"part": "test"', "out", keep=M),
    Case(
        "predict-inf",
        predict(put("i.csv", table(cell(61, "inf")))),
        2,
        "i.csv: column 'load' line 61: value inf",
        keep=M,
    ),
    Case(
        "predict-too-short",
        predict(put("s.csv", table(n=5))),
        2,
        "series x has 5 rows, fewer than lookback = 12",
        keep=M,
    ),
    Case(
        "predict-fails-earlier-output-intact",
        lambda p: [*predict(put("i.csv", table(cell(3, "inf"))))(p), "--output", p["prev"]],
        2,
        "not finite",
        keep=("m", "prev"),
    ),
    Case(
        "predict-plot-under-a-file",
        lambda p: [*predict(GOOD)(p), "--plot", p["prev"] / "f.png"],
        2,
        "is a file, not a folder",
        keep=("m", "prev"),
    ),
    Case("stdin-empty", predict(None), 2, "<stdin>: no table on standard input", keep=M),
    Case("stdin-works", predict(None), 0, "x,2024-01-03 12:00:00", "out", keep=M),
    Case("stdin-binary", predict(None), 2, "<stdin>: line 1, column 3: binary data", keep=M),
    Case("backtest-inf", backtest(put("i.csv", table(cell(50, "inf"))), "--plot", "none"), 2, "not finite", keep=M),
    Case("backtest-works", backtest(GOOD, "--plot", "none"), 0, "forecasts over the test part", keep=M),
]
STDIN = {"stdin-empty": b"", "stdin-works": table().encode(), "stdin-binary": b"a,\x00b\n1,2\n"}
WORKS: dict[str, Callable[[str, str, dict[str, Path]], bool]] = {
    "utf16-with-bom-works": lambda out, err, p: json.loads(out)["time_column"] == "date",
    "windows-line-ends-work": lambda out, err, p: json.loads(out)["series_column"] == "site",
    "utf16-predict-works": lambda out, err, p: len(pd.read_csv(io.StringIO(out))) == 6,
    "predict-extra-column-ignored": lambda out, err, p: len(pd.read_csv(io.StringIO(out))) == 6,
    "stdin-works": lambda out, err, p: len(pd.read_csv(io.StringIO(out))) == 6,
    "max-rows-warns-and-keeps-the-last": lambda out, err, p: (
        err.count("warning:") == 1 and "(longest 60 rows): kept the last 40 rows of each" in err
    ),
    "max-rows-of-the-model-at-predict": lambda out, err, p: err.count("warning:") == 1,
    "evaluate-works": lambda out, err, p: json.loads(out)["windows"] > 0,
    "backtest-works": lambda out, err, p: len(pd.read_csv(p["tmp"] / "b.csv")) > 0,
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A copy of the fixture folder, and one whose config says ``max_rows`` 100 (weights unchanged)."""
    root = tmp_path_factory.mktemp("forecast")
    shutil.copytree(FIXTURE, root / "m")
    shutil.copytree(FIXTURE, root / "capped")
    cfg = json.loads((root / "capped" / "config.json").read_text())
    cfg["config"]["max_rows"] = 100
    (root / "capped" / "config.json").write_text(json.dumps(cfg))
    return {"m": root / "m", "capped": root / "capped"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forecast_table(case: Case, models: dict[str, Path], tmp_path: Path, capsys, monkeypatch) -> None:
    prev = tmp_path / "earlier.csv"
    prev.write_text("an earlier output\n")
    places = {"tmp": tmp_path, "prev": prev, **models}
    if case.id in STDIN:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(STDIN[case.id])))
    out, err = run_case(case, places, capsys)
    if case.id in WORKS:
        assert WORKS[case.id](out, err, places), (out[:500], err)
    if case.code == 2:
        assert len(err) < 600, err


def test_table_size() -> None:
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


# -------------------------------------------------------------------------------- the Python API
def frame(n: int = 60) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(table(n=n)))


def _train(data: object, **settings: object):
    kw = {"lookback": 8, "horizon": 2, "time_column": "date", "series_column": "site", "epochs": 1, **settings}
    return lambda: lstmkit.train("forecast", data, None, None, quiet=True, **kw)


def _with(column: str, row: int, value: object) -> pd.DataFrame:
    df = frame().astype({column: object})
    df.loc[row, column] = value
    return df


API = [
    ("a-list", _train([[1, 2], [3, 4]]), "data: expected a CSV or Parquet file path or a pandas DataFrame, got list"),
    ("a-dict", _train({"load": [1, 2, 3]}), "got dict"),
    ("none", _train(None), "got NoneType"),
    ("inf", _train(_with("load", 5, np.inf)), "DataFrame: column 'load' row 5: value inf is not finite"),
    ("huge", _train(_with("load", 7, 1e300)), "DataFrame: column 'load' row 7: value 1e+300 is too large"),
    ("list-cell", _train(_with("load", 3, [1, 2])), "DataFrame: column 'load' row 3: non-numeric value [1, 2]"),
    ("text-cell", _train(_with("load", 4, "oops")), "column 'load' row 4: non-numeric value 'oops'"),
    ("nan-time", _train(_with("date", 2, None)), "DataFrame: column 'date' row 2: empty time"),
    ("duplicate-columns", _train(pd.concat([frame(), frame()[["load"]]], axis=1)), "column 'load' appears twice"),
    ("no-columns", _train(pd.DataFrame()), "DataFrame: no columns"),
    ("no-rows", _train(frame().iloc[:0]), "DataFrame: no data rows"),
    ("valid-given", lambda: lstmkit.train("forecast", frame(), frame(), quiet=True), "--valid: forecast"),
    ("series-id-missing", _train(_with("site", 9, None)), "column 'site' row 9: empty series id"),
]


@pytest.mark.parametrize(("name", "call", "fragment"), API, ids=[a[0] for a in API])
def test_python_api_bad_data(name, call, fragment) -> None:
    with pytest.raises(LstmkitError) as info:
        call()
    message = str(info.value)
    assert fragment in message and "\n" not in message and len(message) < 600, message


def test_python_api_int_column_names_train(tmp_path) -> None:
    df = pd.DataFrame(np.sin(np.arange(120)[:, None] / np.array([3.0, 5.0])), columns=[0, 1])
    result = _train(df, time_column=None, series_column=None, hidden_size=4)()
    assert result.predictor.config.target == ["1"]  # names as text: the saved config names the column


@pytest.fixture(scope="module")
def predictor(models: dict[str, Path]):
    return lstmkit.load(models["m"])


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda p: p.predict(3), "input 1: expected a table (a CSV or Parquet path, or a pandas DataFrame), got int"),
        (lambda p: p.predict([frame(), None]), "input 2: expected a table"),
        (lambda p: p.predict(frame().assign(load=np.inf)), "DataFrame: column 'load' row 0: value inf is not finite"),
        (lambda p: p.predict(frame().replace({"site": {"y": "z"}})), "series 'z' was not seen in training"),
        (lambda p: p.predict(frame().drop(columns="temp")), "DataFrame: column 'temp' not found"),
        (lambda p: p.predict("/no/such.csv"), "such.csv: file not found"),
        (lambda p: p.evaluate(frame(), part="all"), "part (--part) must be one of train, valid, test"),
        (lambda p: p.evaluate(frame(20)), "DataFrame: the train split has no window"),
        (lambda p: p.backtest(frame(), stride=0), "stride (--stride) must be >= 1"),
        (lambda p: p.predict(frame(), plot=3), "plot"),
    ],
)
def test_predictor_bad_input(predictor, call, fragment) -> None:
    with pytest.raises(LstmkitError) as info:
        call(predictor)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def test_predictor_takes_a_table_with_extra_columns_and_crlf(predictor) -> None:
    base = predictor.predict(frame())
    assert len(base) == 6 and np.isfinite(base["load"]).all()
    assert predictor.predict(frame().assign(extra=1.0)).equals(base)  # other columns are ignored
