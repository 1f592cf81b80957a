"""Robustness table, the parts every task shares: broken model folders (for each task's fixture
folder), settings from the command line, TOML files and config.json, the output folder, --resume.

Each case: exit code, message fragment, no traceback, nothing half-written, earlier files intact
(see harness.py). The task tables are tests/robustness/test_robust_<task>.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from harness import Case, run_case

from lstmkit import tasks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
TASKS = list(tasks.TASKS)


def _edit_json(name: str, change):
    def setup(p: dict[str, Path]) -> None:
        path = p["m"] / name
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return setup


def _write(name: str, raw: bytes):
    return lambda p: (p["m"] / name).write_bytes(raw)


def _nan_weights(p: dict[str, Path]) -> None:
    from safetensors.torch import load, save

    raw = (p["m"] / "model.safetensors").read_bytes()
    state = load(raw)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name].view(-1)[0] = float("nan")
    raw = save({k: v.contiguous() for k, v in state.items()})
    (p["m"] / "model.safetensors").write_bytes(raw)
    cfg = json.loads((p["m"] / "config.json").read_text())
    cfg["weights"] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}  # a checksum that fits
    (p["m"] / "config.json").write_text(json.dumps(cfg))


def _first_transform(p: dict[str, Path]) -> str:
    return json.loads((p["m"] / "config.json").read_text())["transforms"][0]


def _drop_transform(p: dict[str, Path]) -> None:
    (p["m"] / f"{_first_transform(p)}.json").unlink()


def _garble_transform(p: dict[str, Path]) -> None:
    (p["m"] / f"{_first_transform(p)}.json").write_text('{"a": ')


def _wrong_type_transform(p: dict[str, Path]) -> None:
    (p["m"] / f"{_first_transform(p)}.json").write_text("[1, 2, 3]")


INSPECT = lambda p: ["inspect", "--model", p["m"], "--output", p["tmp"] / "g.png"]  # noqa: E731  loads any folder

FOLDER_CASES = [
    Case("no-config", INSPECT, 2, "config.json not found", setup=lambda p: (p["m"] / "config.json").unlink()),
    Case("corrupt-config", INSPECT, 2, "corrupt JSON", setup=_write("config.json", b'{"task": ')),
    Case("config-not-utf8", INSPECT, 2, "corrupt JSON", setup=_write("config.json", b'{"task": "\xff"}')),
    Case(
        "old-format",
        INSPECT,
        2,
        "model folder format 1",
        setup=_edit_json("config.json", lambda d: d.pop("format_version")),
    ),
    Case(
        "unknown-task",
        INSPECT,
        2,
        "unknown task 'nope'",
        setup=_edit_json("config.json", lambda d: d.update(task="nope")),
    ),
    Case("no-weights", INSPECT, 2, "model weights not found", setup=lambda p: (p["m"] / "model.safetensors").unlink()),
    Case(
        "truncated-weights",
        INSPECT,
        2,
        "does not match the checksum",
        setup=lambda p: (p["m"] / "model.safetensors").write_bytes((p["m"] / "model.safetensors").read_bytes()[:100]),
    ),
    Case(
        "tampered-weights",
        INSPECT,
        2,
        "does not match the checksum",
        setup=lambda p: (p["m"] / "model.safetensors").write_bytes(
            (p["m"] / "model.safetensors").read_bytes()[:-4] + b"\x00\x00\x80\x7f"
        ),
    ),
    Case("nan-weights", INSPECT, 2, "holds NaN or infinite values", setup=_nan_weights),
    Case(
        "hidden-size-edited",
        INSPECT,
        2,
        "does not match config.json",
        setup=_edit_json(
            "config.json", lambda d: d["config"]["lstm"].update(hidden_size=d["config"]["lstm"]["hidden_size"] + 1)
        ),
    ),
    Case(
        "hidden-size-wrong-type",
        INSPECT,
        2,
        "hidden_size (--hidden-size) must be an integer, got 'big'",
        setup=_edit_json("config.json", lambda d: d["config"]["lstm"].update(hidden_size="big")),
    ),
    Case(
        "dropout-out-of-range",
        INSPECT,
        2,
        "dropout (--dropout) must be < 1, got 2",
        setup=_edit_json("config.json", lambda d: d["config"]["lstm"].update(dropout=2)),
    ),
    Case(
        "unknown-setting",
        INSPECT,
        2,
        "unknown setting 'lstm.colour'",
        setup=_edit_json("config.json", lambda d: d["config"]["lstm"].update(colour="red")),
    ),
    Case(
        "config-section-not-a-table",
        INSPECT,
        2,
        "expected a table of settings",
        setup=_edit_json("config.json", lambda d: d["config"].update(train=3)),
    ),
    Case("dims-missing", INSPECT, 2, "field 'dims' missing", setup=_edit_json("config.json", lambda d: d.pop("dims"))),
    Case("transform-missing", INSPECT, 2, "not found", setup=_drop_transform),
    Case("transform-corrupt", INSPECT, 2, "corrupt JSON", setup=_garble_transform),
    Case("transform-wrong-type", INSPECT, 2, ".json", setup=_wrong_type_transform),
    Case(
        "transform-name-escapes",
        INSPECT,
        2,
        "bad transform name",
        setup=_edit_json("config.json", lambda d: d.update(transforms=["../../etc/x"])),
    ),
    Case("not-a-folder", lambda p: ["inspect", "--model", p["tmp"] / "none"], 2, "model folder not found"),
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    return {"tmp": tmp_path}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("case", FOLDER_CASES, ids=[c.id for c in FOLDER_CASES])
def test_broken_model_folders(task, case, places, capsys):
    shutil.copytree(FIXTURES / task, places["tmp"] / "m")
    places["m"] = places["tmp"] / "m"
    run_case(Case(case.id, case.argv, case.code, case.fragment, setup=case.setup, keep=("m",)), places, capsys)


# ---------------------------------------------------------------------------------------- settings and --out
def _tsv(p: dict[str, Path]) -> Path:
    path = p["tmp"] / "train.tsv"
    if not path.exists():
        path.write_text("sentence\tlabel\n" + "good film\tpos\nbad film\tneg\n" * 10)
    return path


def _toml(text: str):
    def argv(p: dict[str, Path]) -> list:
        (p["tmp"] / "c.toml").write_text(text)
        return ["classify", "train", "--data", _tsv(p), "--out", p["tmp"] / "o", "--config", p["tmp"] / "c.toml"]

    return argv


def _train(*extra: object):
    return lambda p: ["classify", "train", "--data", _tsv(p), "--out", p["tmp"] / "o", "--epochs", "1", *extra]


def _model(p: dict[str, Path]) -> None:
    shutil.copytree(FIXTURES / "classify", p["tmp"] / "o")


def _readonly(p: dict[str, Path]) -> None:
    (p["tmp"] / "ro").mkdir()
    os.chmod(p["tmp"] / "ro", 0o500)


SETTING_CASES = [
    Case(
        "toml-unknown-key", _toml("hidden_sise = 3\n"), 2, "unknown setting 'hidden_sise' (did you mean hidden_size?)"
    ),
    Case("toml-unknown-table", _toml("[model]\nhidden_size = 3\n"), 2, "unknown table [model]"),
    Case("toml-key-in-wrong-table", _toml("[lstm]\nepochs = 3\n"), 2, "unknown setting [lstm] 'epochs'"),
    Case("toml-twice", _toml("hidden-size = 3\n[lstm]\nhidden_size = 4\n"), 2, "a second time"),
    Case("toml-wrong-type", _toml('epochs = "many"\n'), 2, "epochs (--epochs) must be an integer"),
    Case("toml-out-of-range", _toml("dropout = 1.0\n"), 2, "dropout (--dropout) must be < 1"),
    Case("toml-nan", _toml("lr = nan\n"), 2, "lr (--lr) must be a finite number"),
    Case("toml-invalid", _toml("epochs = \n"), 2, "invalid TOML"),
    Case("toml-missing", lambda p: [*_train()(p), "--config", p["tmp"] / "none.toml"], 2, "config file not found"),
    Case("flag-wrong-type", _train("--hidden-size", "many"), 2, "hidden_size (--hidden-size) must be an integer"),
    Case("flag-negative", _train("--dropout", "-0.1"), 2, "dropout (--dropout) must be >= 0"),
    Case("flag-zoneout", _train("--zoneout", "1"), 2, "zoneout (--zoneout) must be < 1"),
    Case("flag-weight-drop", _train("--weight-drop", "1.5"), 2, "weight_drop (--weight-drop) must be < 1"),
    Case("flag-variational", _train("--variational-dropout", "-1"), 2, "variational_dropout"),
    Case("flag-choice", _train("--optimizer", "adam"), 2, "must be one of adamw, sgd"),
    Case("flag-inf", _train("--lr", "inf"), 2, "lr (--lr) must be a finite number"),
    Case("flag-max-time-zero", _train("--max-time", "0"), 2, "max_time (--max-time) must be > 0"),
    Case("flag-monitor-unknown", _train("--monitor", "f1"), 2, "monitor (--monitor) must be one of accuracy"),
    Case("flag-unknown", _train("--colour", "red"), 2, "unrecognized arguments: --colour"),
    Case(
        "flag-renamed",
        lambda p: ["classify", "predict", "--model", p["tmp"], "--output-format", "jsonl"],
        2,
        "--output-format is now --json",
    ),
    Case(
        "out-is-a-file",
        lambda p: [*_train()(p)[:-4], "--out", _tsv(p), "--epochs", "1"],
        2,
        "exists and is not a folder",
    ),
    Case("out-holds-a-model", _train(), 2, "pass --overwrite", setup=_model, keep=("tmp",)),
    Case(
        "out-holds-other-files",
        _train(),
        2,
        "holds other files",
        setup=lambda p: ((p["tmp"] / "o").mkdir(), (p["tmp"] / "o" / "notes.txt").write_text("mine")),
        keep=("tmp",),
    ),
    Case(
        "out-not-writable",
        lambda p: [*_train()(p)[:-4], "--out", p["tmp"] / "ro" / "m", "--epochs", "1"],
        2,
        "is not writable",
        setup=_readonly,
    ),
    Case("resume-and-overwrite", _train("--resume", "--overwrite"), 2, "exclude each other"),
    Case("test-missing", _train("--test", "/no/such.tsv"), 2, "such.tsv: file not found"),
    Case("threads-zero", _train("--threads", "0"), 2, "--threads must be >= 1"),
]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_not_writable_as_a_user(places, capsys):  # pragma: no cover - CI runs as root
    run_case(next(c for c in SETTING_CASES if c.id == "out-not-writable"), places, capsys)


@pytest.mark.parametrize(
    "case",
    [c for c in SETTING_CASES if c.id != "out-not-writable"],
    ids=[c.id for c in SETTING_CASES if c.id != "out-not-writable"],
)
def test_settings_and_out(case, places, capsys):
    run_case(case, places, capsys)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (["--hidden-size", "6"], "--resume: settings.lstm.hidden_size is 6 but the checkpoint was made with 4"),
        (["--pooling", "mean"], "--resume: settings.pooling is 'mean'"),
        (["--lr", "0.5"], "--resume: lr is 0.5"),
        (["--data", "other"], "--resume: dims.vocab_size is 6 but the checkpoint was made with 5"),
    ],
)
def test_resume_against_a_changed_run(change, fragment, places, capsys, tmp_path):
    first = [
        "classify",
        "train",
        "--data",
        _tsv(places),
        "--out",
        tmp_path / "o",
        "--epochs",
        "1",
        "--hidden-size",
        "4",
        "--embed-size",
        "4",
        "--quiet",
        "--threads",
        "1",
    ]
    from lstmkit.cli.main import main

    assert main([str(a) for a in first]) == 0
    if change[0] == "--data":
        other = tmp_path / "other.tsv"
        other.write_text("sentence\tlabel\n" + "fine day\tpos\nawful night\tneg\n" * 10)
        change = ["--data", str(other)]
    argv = (
        [*first[:2], *change, *[a for a in first[2:] if a not in ("--data", _tsv(places))]]
        if change[0] == "--data"
        else [*first, *change]
    )
    case = Case("resume-" + change[0], lambda p: [*argv, "--resume"], 2, fragment, keep=("o",))
    places["o"] = tmp_path / "o"
    run_case(case, places, capsys)
