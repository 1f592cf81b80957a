"""``lstmkit inspect``: heatmaps of an LSTM's gates and cell state over one input sequence.

Every predictor that supports it provides:

- ``inspect_sample(data: str | None, index: int = 0)``: one input sequence, read from ``data``
  (a file in the task's predict-input format) or a default sample when ``data`` is None;
- ``trace_gates(sample) -> list[Gates]``: the core's gates, index ``layer * D + direction``,
  each field (B, T, H) with B = 1;
- ``num_directions`` (1 or 2) and optionally ``step_labels(sample) -> list[str]``: T labels for
  the time axis (tokens, frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmkit.config import Settings, setting
from lstmkit.errors import LstmkitError
from lstmkit.tasks.spec import Arg, Command


@dataclass
class InspectOptions(Settings):
    """What to draw."""

    title = "inspect"

    index: int = setting(0, ge=0, help="which sequence of --data to trace")
    layer: int = setting(-1, help="LSTM layer to draw (-1: the last)")
    direction: int = setting(0, ge=0, le=1, help="0: forward, 1: backward")
    units: int = setting(64, ge=1, help="draw at most this many hidden units")


COMMAND = Command(
    name="inspect",
    help="heatmaps of the input, forget and output gates and the cell state of one LSTM layer over one input",
    run="lstmkit.inspect:run",
    options=InspectOptions,
    args=(
        Arg("data", "input file in the task's predict format (default: the sample saved with the model)"),
        Arg("output", "the PNG to write (default: MODEL/gates.png)"),
    ),
)


def select_layer(gates: list[Any], layer: int, direction: int, directions: int) -> tuple[Any, int]:
    """``gates[layer * D + direction]`` with Python-style negative ``layer``."""
    layers = len(gates) // directions
    if not -layers <= layer < layers:
        raise LstmkitError(f"--layer {layer}: the model has {layers} layer(s)")
    if direction >= directions:
        raise LstmkitError(f"--direction {direction}: the model is not bidirectional")
    return gates[(layer % layers) * directions + direction], layer % layers


def inspect_model(
    model: str, data: str | None = None, out: str | None = None, options: InspectOptions | None = None
) -> Path:
    """Python API behind ``lstmkit inspect``; returns the PNG path."""
    import lstmkit
    from lstmkit.plots import plot_gates

    o = options or InspectOptions()
    predictor: Any = lstmkit.load(model)
    if not hasattr(predictor, "trace_gates") or not hasattr(predictor, "inspect_sample"):
        raise LstmkitError(f"{model}: the {predictor.task} predictor does not support inspect")
    sample = predictor.inspect_sample(data, o.index)
    gates = predictor.trace_gates(sample)
    if not gates:
        raise LstmkitError(f"{model}: the predictor returned no gates")
    directions = int(predictor.num_directions)
    chosen, layer_no = select_layer(list(gates), o.layer, o.direction, directions)
    labels = predictor.step_labels(sample) if hasattr(predictor, "step_labels") else None
    out_path = Path(out) if out else Path(model) / "gates.png"
    name = "forward" if o.direction == 0 else "backward"
    title = f"{Path(model).name}: layer {layer_no}" + (f" ({name})" if directions == 2 else "")
    return plot_gates(chosen, out_path, labels=labels, title=title, max_units=o.units)


def run(args: dict[str, Any], options: InspectOptions) -> int:
    print(inspect_model(args["model"], args["data"], args["output"], options))
    return 0
