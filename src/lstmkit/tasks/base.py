"""The task contract: what each task family implements, and what every task gets for it.

A task is two classes::

    class Tagging(Task[TagConfig]):                      # lstmkit/tasks/tag/task.py
        spec = SPEC                                      # name, settings, options (tag/config.py)
        Predictor = TagPredictor
        def prepare(self, data, valid=None) -> Prepared  # examples + transforms fitted on train only
        def build(self, dims) -> nn.Module               # the network from self.config and dims
        def loss(self, model, batch) -> Tensor           # mean loss of one batch
        def metrics(self, model, batches) -> dict        # validation metrics, once per epoch

    class TagPredictor(Predictor[TagConfig]):            # lstmkit/tasks/tag/predict.py
        def setup(self)                                  # transforms (JSON) -> vocabularies, tokenizers
        def predict_items(self, items, options) -> list  # one output per input, in order
        def evaluate_data(self, data, options) -> dict   # metrics on labelled data

For that, :func:`lstmkit.tasks.fit.fit` trains it with the one trainer (checkpoints, resume, time
budget, torchrun), :meth:`Predictor.load` / :func:`lstmkit.load` bring any model folder back, and the
command line offers ``lstmkit <task> train|evaluate|predict`` with every setting as a flag.

A predictor is built the same way after training and after loading, from the config, the network,
``dims`` and the transforms as JSON, so a saved model reloads to exactly its predictions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from lstmkit.config import Settings
from lstmkit.errors import DataError, ModelFolderError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from lstmkit.data.batching import BatchSampler
    from lstmkit.tasks.spec import TaskSpec
    from lstmkit.trainer import TrainResult

C = TypeVar("C", bound=Settings)
Callback = tuple[str, Callable[[Any], None]]


@dataclass
class Prepared:
    """What :meth:`Task.prepare` returns: the examples and everything fitted on the training data.

    Attributes:
        train / valid: sequences of examples (any Python objects) for the trainer.
        collate: list of examples -> batch.
        dims: sizes derived from the data (vocabulary, classes, channels); saved in config.json,
            they rebuild the network with :meth:`Task.build`.
        transforms: name -> JSON-able object (vocabulary, scaler, labels, a sample for inspect);
            saved as ``<name>.json`` and read by :meth:`Predictor.setup`.
        batch_sampler: ``(epoch, generator, n) -> batches of indices`` (default: seeded shuffle).
        valid_data: the validation data as :meth:`Predictor.evaluate` takes it, for the final
            report in ``metrics.json`` (None: only the trainer's per-epoch numbers).
        extra: anything else the task's :meth:`Task.report` wants (a test split, ...).
    """

    train: Sequence[Any]
    collate: Callable[[list[Any]], Any]
    dims: dict[str, Any]
    transforms: dict[str, Any]
    valid: Sequence[Any] | None = None
    batch_sampler: BatchSampler | None = None
    valid_data: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Task(Generic[C]):
    """One task family's training side (see the module docstring). An instance is one run:
    ``prepare`` may resolve automatic settings in ``self.config`` (what is saved is the resolved
    config) and keep what ``loss`` and ``metrics`` need."""

    spec: ClassVar[TaskSpec]
    Predictor: ClassVar[type[AnyPredictor]]
    #: what :meth:`report` costs, in validation passes (the time budget keeps that much for it)
    report_cost: ClassVar[float] = 1.5

    def __init__(self, config: C):
        self.config = config

    @property
    def name(self) -> str:
        return self.spec.name

    def check(self, data: Any, valid: Any = None) -> None:
        """Everything that can be checked before training without the cost of :meth:`prepare`
        (files readable, columns and formats present); ``train --dry-run`` runs it."""

    def prepare(self, data: Any, valid: Any = None) -> Prepared:
        """Read ``data`` (and ``valid``, else a held-out part of ``data``) into examples; fit
        vocabularies / scalers on the training part only."""
        raise NotImplementedError

    def build(self, dims: Mapping[str, Any]) -> nn.Module:
        """The network for ``self.config`` and the data's ``dims`` (random weights)."""
        raise NotImplementedError

    def init(self, model: nn.Module, prep: Prepared) -> None:
        """Training-time initialisation after :meth:`build` (e.g. pretrained embeddings)."""

    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """The mean loss of one batch (the trainer adds L1, clips and steps)."""
        raise NotImplementedError

    def identity(self, prep: Prepared) -> dict[str, Any]:
        """What a checkpoint must share with a run that resumes it: the task, every setting but the
        trainer's (those are checked by the trainer itself), the data's sizes and a fingerprint of
        the fitted transforms (another data file gives another vocabulary or scaler)."""
        import hashlib

        from lstmkit.io import dumps_json

        settings = {k: v for k, v in self.config.to_dict().items() if k != "train"}
        transforms = hashlib.sha256(dumps_json(prep.transforms).encode()).hexdigest()[:16]
        return {"task": self.name, "settings": settings, "dims": dict(prep.dims), "transforms": transforms}

    def metrics(self, model: nn.Module, batches: list[Any]) -> dict[str, float]:
        """Validation metrics of one epoch (``valid_loss`` is added by the trainer)."""
        return {}

    def callbacks(self) -> list[Callback]:
        """``(event, fn)`` trainer hooks the task needs (e.g. reset a carried state each epoch)."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """What the task carries between training steps beyond the model (tensors and plain
        values), saved in every checkpoint so that a resumed run goes on exactly; none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def report(self, predictor: AnyPredictor, prep: Prepared, result: TrainResult) -> dict[str, Any]:
        """Final metrics for ``metrics.json`` besides ``training``: by default the full
        evaluation of the validation data."""
        if prep.valid_data is None:
            return {}
        return {"valid": predictor.evaluate(prep.valid_data)}


def build_network(run: Task[Any], dims: Mapping[str, Any]) -> nn.Module:
    """``run.build(dims)``; a network too large to allocate (``--hidden-size 60000 --num-layers 64``)
    is a one-line :class:`~lstmkit.errors.LstmkitError` naming the settings to lower."""
    import re

    from lstmkit.errors import LstmkitError

    try:
        return run.build(dims)
    except (RuntimeError, MemoryError) as e:
        found = re.search(r"allocate (\d+) bytes", str(e))
        if not isinstance(e, MemoryError) and found is None:
            raise
        size = f" (it asks for {int(found.group(1)) / 2**30:,.0f} GiB)" if found else ""
        raise LstmkitError(
            f"the network does not fit in memory{size}: lower --hidden-size, --embed-size or --num-layers"
        ) from None


class Predictor(Generic[C]):
    """A trained model ready to use: ``predict``, ``evaluate``, ``config``, ``metrics``, ``save``.

    ``Predictor.load(folder)`` (or :func:`lstmkit.load`) returns the right subclass for any model
    folder; ``TagPredictor.load(folder)`` also checks that the folder holds a tagger.
    """

    spec: ClassVar[TaskSpec]

    def __init__(
        self,
        config: C,
        model: nn.Module,
        dims: Mapping[str, Any],
        transforms: Mapping[str, Any],
        metrics: dict[str, Any] | None = None,
    ):
        from lstmkit.trainer.distributed import unwrap

        self.config = config
        self.model = unwrap(model).cpu().eval()
        self.dims = dict(dims)
        self.transforms = dict(transforms)
        self.metrics = metrics
        self.setup()

    @property
    def task(self) -> str:
        return self.spec.name

    # ------------------------------------------------------------------ folders
    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Predictor[Any]:
        """The predictor of a model folder. Never unpickles; a missing, corrupt or mismatched file
        raises :class:`~lstmkit.errors.ModelFolderError` naming it."""
        from lstmkit import tasks
        from lstmkit.io import CONFIG_FILE, read_folder

        path = Path(folder)
        mf = read_folder(path)
        name = mf.task
        if name not in tasks.TASKS:
            raise ModelFolderError(f"{path / CONFIG_FILE}: unknown task {name!r}")
        if cls is not Predictor and cls.spec.name != name:
            raise ModelFolderError(f"{path}: a {name!r} model, not a {cls.spec.name!r} model")
        task_cls = tasks.task_class(name)
        config = task_cls.spec.config.from_dict(mf.config, source=str(path / CONFIG_FILE))
        try:
            model = build_network(task_cls(config), mf.dims)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFolderError(f"{path / CONFIG_FILE}: dims do not fit this task ({e})") from None
        model = mf.load_into(model)
        try:
            return task_cls.Predictor(config, model, mf.dims, mf.transforms, mf.metrics)
        except ModelFolderError as e:  # setup() names the file: "vocab.json: ..."
            raise ModelFolderError(f"{path}/{e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:  # a transform of the wrong shape
            names = ", ".join(f"{n}.json" for n in mf.header["transforms"])
            raise ModelFolderError(f"{path}: {names}: malformed ({type(e).__name__}: {e})") from None

    def save(self, folder: str | os.PathLike[str], metrics: dict[str, Any] | None = None) -> Path:
        """Write this model as a folder (config.json, model.safetensors, one JSON per transform)."""
        from lstmkit.io import save_model

        if metrics is not None:
            self.metrics = metrics
        return save_model(
            folder, self.task, self.config, self.model, dims=self.dims, transforms=self.transforms, metrics=self.metrics
        )

    # ------------------------------------------------------------------ the uniform calls
    def predict(self, inputs: Any, **options: Any) -> Any:
        """One output per input, in order. ``inputs``: one item (a string is one text), a list of
        items, or a :class:`pathlib.Path` to a file of them; ``options``: the task's predict options."""
        opts = self.spec.predict().build(options)
        return self.predict_items(self.items(inputs, opts), opts)

    def evaluate(self, data: Any, **options: Any) -> dict[str, Any]:
        """Metrics on labelled ``data`` (a file path or in-memory examples); ``options``: the task's
        evaluate options."""
        return self.evaluate_data(data, self.spec.evaluate().build(options))

    # ------------------------------------------------------------------ what a task provides
    def setup(self) -> None:
        """Turn ``self.transforms`` (JSON) into the objects prediction needs; a bad transform raises
        :class:`~lstmkit.errors.ModelFolderError` starting with its file name (``"vocab.json: ..."``)."""

    def items(self, inputs: Any, options: Any) -> list[Any]:
        """``inputs`` as a list of items: a Path is read with :meth:`read`, a list or tuple is
        taken as is, anything else is one item."""
        if isinstance(inputs, os.PathLike):
            return self.read(str(inputs), options)
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        return [inputs]

    def read(self, path: str, options: Any) -> list[Any]:
        """The items of a file (``-``: standard input) in the task's predict format."""
        raise DataError(f"{path}: {self.task} predict does not read files")

    def predict_items(self, items: list[Any], options: Any) -> Any:
        raise NotImplementedError

    def evaluate_data(self, data: Any, options: Any) -> dict[str, Any]:
        raise NotImplementedError

    def format_outputs(self, items: list[Any], outputs: Any, options: Any) -> str:
        """``predict``'s text on stdout / ``--output`` (``--json`` prints the outputs as JSON)."""
        from lstmkit.io import dumps_json

        return "".join(dumps_json(o) + "\n" for o in outputs)

    def format_metrics(self, metrics: dict[str, Any]) -> str:
        """``evaluate``'s text on stdout (``--json`` prints the dict)."""
        return "\n".join(
            f"{k:<24} {v:.4f}" if isinstance(v, float) else f"{k:<24} {v}"
            for k, v in metrics.items()
            if not isinstance(v, (dict, list))
        )


AnyPredictor = Predictor[Any]


def read_stdin_or_file(path: str) -> str:
    """The text of ``path`` (UTF-8), or of standard input for ``-``."""
    if path == "-":
        return sys.stdin.read()
    from lstmkit.data.files import read_text

    return read_text(path)
