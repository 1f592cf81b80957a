"""Settings every task shares: its LSTM stack (:class:`LSTMSettings`), nested as the ``lstm`` section.

The trainer's settings are :class:`lstmkit.trainer.config.TrainConfig`, nested as ``train``. A task
gives both its own defaults with :func:`lstmkit.config.section`, so ``--hidden-size`` means the
same thing in every task (units per direction) while a tagger and a forecaster start from
different sizes. Torch-free (the command line reads it for ``--help``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lstmkit.config import Settings, setting
from lstmkit.trainer.config import TrainConfig


@dataclass
class LSTMSettings(Settings):
    """The task's (Bi)LSTM stack, built from :class:`lstmkit.nn.LSTM` with :meth:`core_kwargs`.

    ``dropout`` is the stack's dropout: on its input, between its layers and on its output (a task
    applies it at those three places; torch.nn.LSTM's own ``dropout`` is only the middle one).
    The variants are the core's (see ``lstmkit.nn.LSTM``); each is off at its default.
    """

    title = "LSTM"

    hidden_size: int = setting(128, ge=1, le=65536, help="LSTM units per direction")
    num_layers: int = setting(1, ge=1, le=64, help="stacked LSTM layers")
    bidirectional: bool = setting(False, help="bidirectional LSTM (outputs 2 × --hidden-size wide)")
    dropout: float = setting(
        0.0, ge=0, lt=1, help="dropout on the LSTM stack's input, between its layers and on its output"
    )
    layer_norm: bool = setting(False, help="layer-normalised gates and cell (Ba et al. 2016)")
    peephole: bool = setting(False, help="peephole connections from the cell to the gates (Gers et al. 2002)")
    variational_dropout: float = setting(
        0.0, ge=0, lt=1, help="variational dropout: one mask per sequence on each layer's inputs and hidden state"
    )
    weight_drop: float = setting(0.0, ge=0, lt=1, help="DropConnect on the recurrent weights W_hh (AWD-LSTM)")
    zoneout: float = setting(
        0.0, ge=0, lt=1, help="zoneout: keep each unit's previous cell and hidden state with this probability"
    )
    forget_bias: float | None = setting(
        None, help="initial forget-gate bias b_if + b_hf (none: torch's uniform initialisation)"
    )

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Width of the stack's output per step: ``directions * hidden_size``."""
        return self.directions * self.hidden_size

    def core_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments of :class:`lstmkit.nn.LSTM` (add ``input_size``, ``batch_first``).

        The between-layer dropout is ``dropout`` when there are several layers; overrides win
        (e.g. ``num_layers=1`` for a model that stacks single layers itself).
        """
        kw: dict[str, Any] = {
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout if self.num_layers > 1 else 0.0,
            "layer_norm": self.layer_norm,
            "peephole": self.peephole,
            "variational_dropout": self.variational_dropout,
            "weight_drop": self.weight_drop,
            "zoneout": self.zoneout,
            "forget_bias": self.forget_bias,
        }
        kw.update(overrides)
        if kw["num_layers"] == 1:
            kw["dropout"] = 0.0
        return kw


class TaskSettings(Settings):
    """Base of a task's settings (which nest ``lstm`` and ``train``): ``--monitor`` must name a
    metric the task reports on validation data, or a loss; :meth:`metric_names` says which."""

    train: TrainConfig

    def metric_names(self) -> tuple[str, ...]:
        """The per-epoch validation metrics of this configuration (besides ``valid_loss``)."""
        return ()

    def check(self) -> None:
        allowed = (*self.metric_names(), "valid_loss", "train_loss")
        if self.train.monitor not in allowed:
            raise self.error("monitor", f"must be one of {', '.join(allowed)}", self.train.monitor)
