"""``lstmkit build-kernels`` and ``lstmkit doctor``: the compiled kernel built up front, the set-up checked.

``build-kernels`` builds the compiled LSTM CPU kernel (:mod:`lstmkit.nn.compiled`) now, once per
machine and torch version, into the cache every checkout and virtual environment of this user
shares, so that no training run pays the minute of compiling; it prints where the build is and how
long it took (exit 0, also when it was already built; 1 with one line when the build fails).

``doctor`` prints one line per check, ``ok``/``warn``/``fail``: versions, threads, CUDA, the C++
tool chain, the kernel, the optional extras, the cache folder and the data folders given with
``--data-dir``. It exits 1 when a check fails (``warn`` is a slower or narrower lstmkit, not a
broken one).

This module imports no torch: ``lstmkit --help`` stays fast; the commands import it when they run.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lstmkit.config import Settings, setting
from lstmkit.tasks.spec import Arg, Command, NoOptions


@dataclass
class DoctorOptions(Settings):
    """What to print."""

    title = "doctor"

    format: Literal["lines", "json"] = setting("lines", help="lines: one line per check; json: one JSON list")


BUILD_KERNELS = Command(
    name="build-kernels",
    help="compile lstmkit's C++ LSTM kernel now (once per machine and torch version, about a minute), "
    "so no training run waits for it",
    run="lstmkit.doctor:run_build",
    options=NoOptions,
    model=False,
)

DOCTOR = Command(
    name="doctor",
    help="check the installation: versions, threads, CUDA, C++ compiler and ninja, the compiled kernel, "
    "optional extras, the kernel cache and data folders (one ok/warn/fail line each)",
    run="lstmkit.doctor:run_doctor",
    options=DoctorOptions,
    args=(
        Arg(
            "data_dir",
            f"data folders to check, separated by '{os.pathsep}' (e.g. ../shared/data)",
        ),
    ),
    model=False,
)

#: the optional extras: module -> (what needs it, the pip extra that installs it)
EXTRAS = {
    "soundfile": ("speech audio files", "audio"),
    "librosa": ("speech features", "audio"),
    "pyarrow": ("Parquet data", "parquet"),
    "onnxruntime": ("lstmkit export, the torch-free runtime", "export"),
    "fastapi": ("lstmkit serve", "serve"),
    "optuna": ("lstmkit <task> tune", "tune"),
    "tensorboard": ("--log-to tensorboard runs", "track"),
}


# ---------------------------------------------------------------------------- build-kernels
def run_build(args: dict[str, Any], options: NoOptions) -> int:
    from lstmkit.nn import compiled

    before = compiled.status(load=False)
    if not compiled.enabled():
        print(f"build-kernels: nothing built: LSTMKIT_COMPILED=0 turns the compiled kernel off ({before['build_dir']})")
        return 0
    with warnings.catch_warnings():  # the failure is reported below, in one line
        warnings.simplefilter("ignore")
        ok = compiled.ensure_built()
    st = compiled.status(load=False)
    if not ok:
        log = Path(st["build_dir"]) / "last-error.txt"
        where = f" (full output: {log})" if log.is_file() else ""
        print(f"build-kernels: the LSTM CPU kernel could not be built: {st['reason']}{where}", file=sys.stderr)
        return 1
    if before["built"]:
        print(f"build-kernels: {st['name']} already built in {st['build_dir']}")
    else:
        print(f"build-kernels: built {st['name']} in {compiled.build_seconds():.0f} s: {st['build_dir']}")
    return 0


# ---------------------------------------------------------------------------- doctor
Check = tuple[str, str, str]  # (level: ok | warn | fail, what, detail)


def _version(module: str) -> tuple[Any, str]:
    """(the module or None, its version or why it did not import)."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # ImportError, or an OSError of a missing native library (libsndfile)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return mod, str(getattr(mod, "__version__", "?"))


def _tool(command: str) -> Check:
    """A program found on PATH and the first line of its ``--version``."""
    name = "compiler" if command != "ninja" else "ninja"
    path = shutil.which(command)
    if path is None and command == "ninja":
        try:  # the pip "ninja" package, which lstmkit puts on PATH itself
            import ninja

            candidate = Path(ninja.BIN_DIR) / "ninja"
            path = str(candidate) if candidate.exists() else None
        except ImportError:
            pass
    if path is None:
        return (
            "warn",
            name,
            f"{command} not found: the compiled kernel cannot be built, the fused path is used (slower)",
        )
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
        version = out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.SubprocessError) as exc:
        return "warn", name, f"{path} does not run: {exc}"
    return "ok", name, f"{version} ({path})"


def _writable(folder: Path) -> Check:
    """The kernel cache folder (or its nearest existing parent) accepts a file."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".lstmkit-doctor-"):
            pass
    except OSError as exc:
        return "warn", "cache", f"{folder} is not writable ({exc.strerror}): set TORCH_EXTENSIONS_DIR"
    return "ok", "cache", f"{folder} (writable)" + ("" if folder.exists() else ", not created yet")


def _kernel(status: dict[str, Any]) -> Check:
    where = status["build_dir"]
    if status["loaded"]:
        return "ok", "kernel", f"{status['name']} built and loadable ({where})"
    if status["setting"] == "0":
        return "warn", "kernel", "LSTMKIT_COMPILED=0: the compiled kernel is off, the fused path is used (slower)"
    if not status["built"] and str(status["reason"]).startswith("not built"):
        return "warn", "kernel", f"{status['name']} not built yet: run `lstmkit build-kernels` (about a minute)"
    return "warn", "kernel", f"{status['name']} unusable, the fused path is used: {status['reason']} ({where})"


def _data(folders: str) -> list[Check]:
    checks: list[Check] = []
    for name in [f for f in folders.split(os.pathsep) if f]:
        path = Path(name).expanduser()
        if path.is_dir():
            entries = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
            shown = ", ".join(entries[:8]) + (", ..." if len(entries) > 8 else "")
            checks.append(("ok", "data", f"{name}: {len(entries)} entries ({shown})" if entries else f"{name}: empty"))
        elif path.exists():
            checks.append(("fail", "data", f"{name} is not a folder"))
        else:
            checks.append(("fail", "data", f"{name} not found (resolved: {path.absolute()})"))
    return checks


def checks(data_dir: str | None = None) -> list[Check]:
    """Every check, in order: (level, what, detail)."""
    import lstmkit

    out: list[Check] = []
    py = platform.python_version()
    out.append(("ok" if sys.version_info >= (3, 10) else "fail", "python", f"{py} ({sys.executable})"))
    out.append(("ok", "lstmkit", f"{lstmkit.__version__} ({Path(lstmkit.__file__).parent})"))
    torch, torch_version = _version("torch")
    out.append(("ok" if torch else "fail", "torch", torch_version))
    numpy, numpy_version = _version("numpy")
    out.append(("ok" if numpy else "fail", "numpy", numpy_version))
    omp = os.environ.get("OMP_NUM_THREADS")
    if torch is not None:
        threads, cores = torch.get_num_threads(), os.cpu_count() or 1
        level = "warn" if threads == 1 and cores > 1 else "ok"
        out.append((level, "threads", f"torch uses {threads} of {cores} CPUs; OMP_NUM_THREADS={omp or 'unset'}"))
        if torch.cuda.is_available():
            out.append(("ok", "cuda", f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}"))
        elif torch.version.cuda is not None:
            out.append(
                ("warn", "cuda", f"torch is built for CUDA {torch.version.cuda} but sees no GPU: the CPU is used")
            )
        else:
            out.append(("ok", "cuda", "not available (a CPU build of torch): lstmkit trains on the CPU"))
    else:
        out.append(("warn", "threads", f"unknown without torch; OMP_NUM_THREADS={omp or 'unset'}"))
    out.append(_tool(os.environ.get("CXX", "c++")))
    out.append(_tool("ninja"))
    if torch is not None:
        from lstmkit.nn import compiled

        with warnings.catch_warnings():  # a failed load is this check's line, not a warning
            warnings.simplefilter("ignore")
            out.append(_kernel(compiled.status()))
    for module, (needs, extra) in EXTRAS.items():
        mod, version = _version(module)
        if mod is not None:
            out.append(("ok", module, version))
        else:
            out.append(("warn", module, f"not importable, {needs} need it: pip install 'lstmkit[{extra}]' ({version})"))
    if torch is not None:
        out.append(_writable(compiled.cache_dir()))
    if data_dir:
        out.extend(_data(data_dir))
    return out


def run_doctor(args: dict[str, Any], options: DoctorOptions) -> int:
    found = checks(args.get("data_dir"))
    if options.format == "json":
        import json

        print(json.dumps([{"level": lv, "check": what, "detail": detail} for lv, what, detail in found], indent=1))
    else:
        for level, what, detail in found:
            print(f"{level:<4} {what:<13} {detail}")
    return 1 if any(level == "fail" for level, _, _ in found) else 0
