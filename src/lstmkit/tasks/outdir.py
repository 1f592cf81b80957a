"""The output folder of a training run: checked before any work, built beside, swapped in whole.

A run into ``--out DIR`` writes everything (checkpoints, history, plots, weights, vocabularies)
into the hidden sibling ``.DIR.partial`` and, once the folder is complete, swaps it into place with
one rename (:func:`lstmkit.io.commit_folder`). Until that instant ``DIR`` is the previous model,
whole and loadable, whatever happens to the run (a kill -9 included); after it, the new one.
``--resume`` continues from the newest checkpoint: the unfinished run's beside ``DIR``, or the
finished run's inside it (to train more epochs).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from lstmkit.errors import LstmkitError
from lstmkit.io import CONFIG_FILE, clear_staging, read_config, staging_dir, swap_dir
from lstmkit.runtime import is_export

CHECKPOINT = Path("checkpoint") / "state.pt"


def check_out(out: str | os.PathLike[str] | None, task: str, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse an output folder before any work: a file in the way, a folder that cannot be written,
    a folder of other files (the run replaces the whole folder), or a model already there (unless
    ``resume`` or ``overwrite``; replacing another task's model is said on stderr)."""
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise LstmkitError(f"--out {path}: exists and is not a folder")
    is_model = (path / CONFIG_FILE).is_file()
    export = is_model and is_export(path)  # config.json of an export folder: no weights, no checkpoint
    if export and resume:
        raise LstmkitError(
            f"--out {path}: an export folder (lstmkit export): no training run to resume; "
            "pass --overwrite to replace it, or choose another folder"
        )
    if is_model and not (resume or overwrite):
        raise LstmkitError(
            f"--out {path}: holds a trained model; pass --overwrite to replace it or --resume to continue"
        )
    if path.is_dir() and not is_model and any(path.iterdir()):
        raise LstmkitError(
            f"--out {path}: holds other files, and a model folder is written whole: choose a new or empty folder"
        )
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise LstmkitError(f"--out {path}: {probe} is not writable")
    if overwrite and is_model:
        if export:
            print(f"note: --overwrite replaces the export folder {path} with a {task!r} model", file=sys.stderr)
            return
        try:
            old = read_config(path)["task"]
        except LstmkitError:
            old = "unreadable"
        if old != task:
            print(f"note: --overwrite replaces a {old!r} model in {path} with a {task!r} model", file=sys.stderr)


def newest_checkpoint(out: str | os.PathLike[str]) -> Path | None:
    """The folder whose ``checkpoint/state.pt`` is newest among the unfinished run beside ``out``,
    a folder caught between its two renames, and ``out`` itself; None when there is none."""
    found = [d for d in (staging_dir(out), swap_dir(out), Path(out)) if (d / CHECKPOINT).is_file()]
    return max(found, key=lambda d: (d / CHECKPOINT).stat().st_mtime_ns) if found else None


def prepare_stage(out: str | os.PathLike[str], resume: bool, main: bool = True) -> tuple[Path, Path | None]:
    """``(stage, resume_from)``: the folder the run writes into, and where its checkpoint is read
    (None: start afresh). Only the ``main`` process changes files."""
    stage = staging_dir(out)
    source = newest_checkpoint(out) if resume else None
    if resume and source is None:
        print(f"note: --resume: no checkpoint in or beside {out}: starting afresh", file=sys.stderr)
    if main:
        if source is not None and source == swap_dir(out):  # a finished folder caught between its renames
            shutil.rmtree(stage, ignore_errors=True)
            os.rename(source, stage)
            source = stage
        elif source != stage:
            clear_staging(out)
        stage.mkdir(parents=True, exist_ok=True)
    return stage, source
