"""The compiled kernel is built once: its cache key, a second checkout, ``build-kernels`` and ``doctor``.

These tests use the kernel build the rest of the suite uses (``compiled.ensure_built()``: the cache
under ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``). Where it is cached they take a
few seconds; on a machine where it is not, the first of them builds it (about a minute, once).
Without a C++ tool chain the tests that need the kernel are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.cli.main import main
from lstmkit.nn import compiled


@pytest.fixture(scope="module")
def built() -> dict:
    """The status of the kernel built in this process's cache (built here if it was not yet)."""
    if not compiled.enabled():
        pytest.skip("LSTMKIT_COMPILED=0")
    if not compiled.ensure_built():
        pytest.skip(f"the compiled kernel could not be built here: {compiled.status(load=False)['reason']}")
    return compiled.status(load=False)


SECOND_RUN = """
import json, torch, lstmkit
from lstmkit.nn import LSTM, compiled
torch.manual_seed(0)
m = LSTM(6, 16, layer_norm=True, bidirectional=True)
x = torch.randn(9, 4, 6, requires_grad=True)
y, _ = m(x)
y.sum().backward()
print(json.dumps({"lstmkit": lstmkit.__file__, "torch": torch.__file__, "last_path": m.last_path,
                  "grad": x.grad is not None and bool(torch.isfinite(x.grad).all()),
                  "build_seconds": compiled.build_seconds(), "status": compiled.status(load=False)}))
"""


def test_a_second_checkout_runs_a_variant_model_without_rebuilding(built, tmp_path):
    """lstmkit copied to another path, and torch's site-packages seen through another path too (as
    from another venv): the same cached build is imported, nothing is compiled or relinked."""
    checkout = tmp_path / "checkout" / "src"
    shutil.copytree(Path(lstmkit.__file__).parent, checkout / "lstmkit", ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "other-venv-site-packages"
    site.symlink_to(Path(torch.__file__).parents[1], target_is_directory=True)
    library = Path(built["path"])
    stamps = [(library.stat().st_mtime_ns, (library.parent / "build.ninja").stat().st_mtime_ns)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(checkout), str(site)]),
        "TORCH_EXTENSIONS_DIR": str(compiled.cache_dir()),  # the main run's cache, named explicitly
    }
    proc = subprocess.run(
        [sys.executable, "-c", SECOND_RUN], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["lstmkit"].startswith(str(checkout)) and out["torch"].startswith(str(site))  # really elsewhere
    assert out["last_path"] == "compiled" and out["grad"]
    assert out["build_seconds"] == 0.0
    assert "compiling" not in proc.stderr
    st = out["status"]
    assert st["built"] and st["loaded"] and st["reason"] is None
    assert (st["name"], st["build_dir"], st["path"]) == (built["name"], built["build_dir"], built["path"])
    stamps.append((library.stat().st_mtime_ns, (library.parent / "build.ninja").stat().st_mtime_ns))
    assert stamps[0] == stamps[1]  # not relinked, build.ninja not rewritten


@pytest.fixture
def own_sources(tmp_path, monkeypatch):
    """The kernel's sources copied to ``tmp_path / "csrc"`` and used for the key (restored after);
    yields (that folder, the name of the real sources' build)."""
    real = compiled._build_name()
    csrc = tmp_path / "csrc"
    shutil.copytree(compiled._CSRC, csrc)
    monkeypatch.setattr(compiled, "_SOURCES", [csrc / f.name for f in compiled._SOURCES])
    monkeypatch.setattr(compiled, "_FILES", [csrc / f.name for f in compiled._FILES])
    compiled._forget_key()
    yield csrc, real
    monkeypatch.undo()
    compiled._forget_key()
    assert compiled._build_name() == real


def _name() -> str:
    compiled._forget_key()
    return compiled._build_name()


def test_the_key_is_the_contents_not_the_path(own_sources):
    csrc, real = own_sources
    assert _name() == real  # the same files elsewhere: the same build
    assert real.startswith(f"lstmkit_cpu_{compiled._cpu_flags()[0]}_")
    assert str(csrc) not in json.dumps(compiled._key_inputs())


def test_the_key_changes_with_a_source_file(own_sources):
    csrc, real = own_sources
    header = csrc / "lstm_math.h"
    text = header.read_text()
    header.write_text(text + "\n// changed\n")
    assert _name() != real
    header.write_text(text)
    assert _name() == real


def test_the_key_changes_with_the_torch_version(own_sources, monkeypatch):
    real = own_sources[1]
    monkeypatch.setattr(torch, "__version__", "9.9.9+cpu")
    assert _name() != real
    monkeypatch.setattr(torch, "__version__", "2.13.0+cu128")
    other = _name()
    assert other != real and other.startswith(f"lstmkit_cpu_{compiled._cpu_flags()[0]}_")


def test_the_key_changes_with_the_compiler_flags(own_sources, monkeypatch):
    monkeypatch.setattr(compiled, "_CFLAGS", [*compiled._CFLAGS, "-DEXTRA"])
    assert _name() != own_sources[1]


def test_copying_the_sources_again_keeps_their_time_stamps(tmp_path):
    """A copy that is already there is left alone (ninja would rebuild a newer source)."""
    first = compiled._copy_sources(tmp_path / "src")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "src").iterdir()}
    assert compiled._copy_sources(tmp_path / "src") == first
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "src").iterdir()} == stamps
    assert sorted(p.name for p in stamps) == ["lstm_cpu.cpp", "lstm_math.h", "slstm_cpu.cpp", "step_cpu.cpp"]
    assert not [p for p in (tmp_path / "src").iterdir() if p.name.endswith(".tmp")]


def test_build_kernels_says_it_is_built(built, capsys):
    assert main(["build-kernels"]) == 0
    out = capsys.readouterr().out
    assert f"{built['name']} already built in {built['build_dir']}" in out


def test_build_kernels_reports_a_failed_build_in_one_line(tmp_path, monkeypatch, capsys):
    """A failed build: exit 1 and one line on stderr (no warning besides), the full output kept."""

    def broken(folder, name):
        raise RuntimeError("Error building extension 'x': [1/3] c++ ...\nlstm_cpu.cpp:1:1: error: boom\nninja: stopped")

    monkeypatch.setattr(compiled, "_state", {})
    monkeypatch.setattr(compiled, "_build_dir", lambda: tmp_path / "cache" / "x")
    monkeypatch.setattr(compiled, "_build", broken)
    (tmp_path / "cache" / "x").mkdir(parents=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["build-kernels"]) == 1
    assert not [w for w in seen if "lstmkit" in str(w.message)]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lstm_cpu.cpp:1:1: error: boom" in err
    assert (tmp_path / "cache" / "x" / "last-error.txt").read_text().count("\n") >= 3
    st = compiled.status(load=False)
    assert not st["loaded"] and st["reason"] == "lstm_cpu.cpp:1:1: error: boom"


def test_doctor_prints_one_line_per_check(built, tmp_path, capsys):
    (tmp_path / "ett").mkdir()
    assert main(["doctor", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.split()[0] in ("ok", "warn", "fail") for line in lines)
    checks = {line.split()[1]: line for line in lines}
    names = ["python", "lstmkit", "torch", "numpy", "threads", "cuda", "compiler", "ninja", "kernel"]
    names += ["soundfile", "librosa", "pyarrow", "onnxruntime", "fastapi", "optuna", "tensorboard", "cache", "data"]
    assert list(checks) == names
    for name in names:
        assert name in checks, name
    assert checks["kernel"].startswith("ok") and built["name"] in checks["kernel"]
    assert checks["torch"].startswith("ok") and torch.__version__ in checks["torch"]
    assert "1 entries (ett)" in checks["data"]
    assert checks["cache"].startswith("ok") and str(compiled.cache_dir()) in checks["cache"]
    assert checks["compiler"].split()[0] in ("ok", "warn")


def test_doctor_fails_on_a_missing_data_folder_and_speaks_json(tmp_path, capsys):
    missing = tmp_path / "no-such-data"
    assert main(["doctor", "--data-dir", str(missing), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    data = [c for c in found if c["check"] == "data"]
    assert data == [{"level": "fail", "check": "data", "detail": f"{missing} not found (resolved: {missing})"}]


def test_the_commands_module_does_not_import_torch():
    code = "import sys, lstmkit.doctor; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
