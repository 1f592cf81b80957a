"""Classifier export: ONNX Runtime against torch, in-process and in a process without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_helpers import FIXTURES, assert_same, fixture_sample, run_without_torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.runtime import load


@pytest.fixture(scope="module")
def pair(exported):
    return lstmkit.load(FIXTURES / "classify"), load(exported("classify"))


def _texts(predictor, n: int, length: int, seed: int) -> list[str]:
    words = [w for w in predictor.encoder.vocab.tokens if not w.startswith("<")]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=length)) for _ in range(n)]


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("length", [1, 7, 300])
def test_runtime_matches_torch(pair, batch, length):
    torch_p, ort_p = pair
    texts = _texts(torch_p, batch, length, seed=batch * 1000 + length)
    texts[-1] = " ".join(texts[-1].split()[: max(1, length // 2)])  # a shorter one in the batch: padding
    assert_same(ort_p.predict(texts), torch_p.predict(texts))


def test_export_folder_predicts_without_torch(exported):
    sample = fixture_sample("classify")
    script = f"""
import json
from lstmkit.runtime import load
print(json.dumps(load({str(exported("classify"))!r}).predict({sample["inputs"]!r})))
"""
    got = run_without_torch(script)
    assert_same(got, lstmkit.load(FIXTURES / "classify").predict(sample["inputs"]))


def test_cli_predict_on_an_export_folder(exported, tmp_path, capsys):
    data = tmp_path / "in.csv"
    data.write_text("text\ngreat fun\nawful\n", encoding="utf-8")
    assert main(["classify", "predict", "--model", str(FIXTURES / "classify"), "--data", str(data), "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main(["classify", "predict", "--model", str(exported("classify")), "--data", str(data), "--json"]) == 0
    assert_same(json.loads(capsys.readouterr().out), want)


def test_export_refuses_to_overwrite_and_names_the_task(exported, capsys):
    out = exported("classify")
    assert main(["export", "--model", str(FIXTURES / "classify"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["tag", "predict", "--model", str(out), "--data", "-"]) == 2
    assert "classify" in capsys.readouterr().err


def test_a_variant_classifier_exports_too(tmp_path):
    from export_helpers import rebuilt

    from lstmkit.export import export_model

    torch_p = rebuilt("classify", layer_norm=True, zoneout=0.1, num_layers=2, pooling="attention")
    ort_p = load(export_model(torch_p, tmp_path / "export"))
    texts = _texts(torch_p, 5, 40, seed=3)
    assert_same(ort_p.predict(texts), torch_p.predict(texts))


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: (d / "model.onnx").write_bytes(b"not onnx"), "model.onnx"),
        (lambda d: (d / "vocab.json").unlink(), "vocab.json"),
        (lambda d: (d / "config.json").write_text('{"format": "lstmkit-export", "task": "classify"}'), "config.json"),
    ],
    ids=["truncated-graph", "missing-vocab", "hand-edited-config"],
)
def test_a_broken_export_folder_is_one_line_exit_2(exported, tmp_path, capsys, damage, named):
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(exported("classify"), folder)
    damage(folder)
    data = tmp_path / "in.csv"
    data.write_text("text\ngreat fun\n", encoding="utf-8")
    assert main(["classify", "predict", "--model", str(folder), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize(
    "argv",
    [["inspect"], ["export", "--out", "{tmp}/again"], ["classify", "train", "--resume", "--out", "{model}"]],
    ids=["inspect", "export", "resume"],
)
def test_commands_that_need_a_model_folder_refuse_an_export_folder(exported, tmp_path, capsys, argv):
    """An export folder holds no weights: a command that needs them says so in one line, exit 2."""
    folder = exported("classify")
    args = [a.format(tmp=tmp_path, model=folder) for a in argv]
    if argv[0] != "classify":
        args[1:1] = ["--model", str(folder)]
    else:
        data = tmp_path / "in.csv"
        data.write_text("text,label\n" + "great fun,pos\ndull,neg\n" * 10, encoding="utf-8")
        args += ["--data", str(data)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "an export folder" in err[-1]
    assert ("no training run to resume" if argv[0] == "classify" else "model folder it was exported from") in err[-1]
    assert load(folder).predict(["great fun"])  # still there, whole


def test_overwrite_replaces_an_export_folder_with_a_model_and_says_so(exported, tmp_path, capsys):
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(exported("classify"), folder)
    data = tmp_path / "in.csv"
    data.write_text("text,label\n" + "great fun,pos\ndull,neg\n" * 10, encoding="utf-8")
    args = ["classify", "train", "--data", str(data), "--out", str(folder), "--overwrite", "--epochs", "1"]
    assert main([*args, "--embed-size", "8", "--hidden-size", "8", "--quiet"]) == 0
    assert f"replaces the export folder {folder}" in capsys.readouterr().err
    assert (folder / "model.safetensors").is_file() and not (folder / "model.onnx").exists()
