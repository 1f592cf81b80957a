"""``lstmkit <task> tune``: search a task's settings with Optuna, for every task alike.

One declaration (:func:`command`) gives every task the action ``tune``; the command line appends it
to each task's own actions. The work is split over:

* :mod:`lstmkit.tune.space`: the search space, from the declared settings and an optional TOML.
* :mod:`lstmkit.tune.study`: the Optuna study in a journal file, the trials (each a normal
  training run into ``DIR/trials/<n>/``), pruning and time budgets, recovery after a kill.
* :mod:`lstmkit.tune.report`: the output folder (``best/``, ``trials.csv``, ``best_config.toml``,
  ``history.png``, ``importance.png``) and the summary.
* :mod:`lstmkit.tune.main`: the command line's entry point.

This module imports neither torch nor Optuna: ``lstmkit <task> --help`` builds from it at once.
"""

from __future__ import annotations

from lstmkit.tasks.spec import Arg, Command, TaskSpec

HELP = (
    "search settings with Optuna (TPE, median pruning): --trials training runs within --max-time, "
    "each into DIR/trials/<n>/; writes DIR/best/ (the best model folder), trials.csv, best_config.toml "
    "(train --config), history.png and importance.png"
)

_ARGS = (
    Arg("data", "training data, as `train --data` takes it"),
    Arg("valid", "validation data, as `train --valid` takes it (it scores every trial)"),
    Arg("out", "the tune's folder: trials/, best/, trials.csv, best_config.toml, plots", required=True),
    Arg(
        "config",
        "settings from a TOML file, as `train --config` reads it; they and the setting flags are fixed in every "
        "trial (the flags win)",
    ),
    Arg(
        "space",
        "TOML overriding the search space: `hidden_size = {low = 32, high = 256, log = true}`, "
        "`patch = {choices = [1, 8, 24]}`, `lookback = false` (not searched)",
    ),
    Arg("storage", "the Optuna journal file (default: OUT/journal.log); processes sharing it share the study"),
    Arg("trials", "training runs in all, the default settings' run included (default: 20)", default="20"),
    Arg("workers", "processes on this machine running trials side by side (default: 1)", default="1"),
    Arg(
        "resume",
        "continue the study in the journal (or join it from another process): finished trials are kept, "
        "the runs a killed process left unfinished run again",
        flag=True,
    ),
    Arg("json", "print the result as one JSON object", flag=True),
    Arg("quiet", "no progress output on stderr", flag=True),
)


def command(spec: TaskSpec) -> Command:
    """The ``tune`` action of ``spec``'s task: its settings are the task's (fixed in every trial when
    given); ``--max-time`` bounds the whole tune and ``--seed`` seeds the sampler and every run."""
    return Command(
        name="tune",
        help=HELP,
        run="lstmkit.tune.main:run",
        options=spec.config,
        args=(*_ARGS, *spec.train_args),
        model=False,
        overwrite=True,
        given=True,
    )
