"""``lstmkit inspect``: heatmaps of an LSTM's gates and cell state over one input sequence.

The predictor (from :func:`lstmkit.load`) provides, see docs/contracts.md "lstmkit inspect":

- ``inspect_sample(data: str | None, index: int = 0)``: one input sequence, read from ``data``
  (a file in the task's predict-input format) or a default sample when ``data`` is None;
- ``trace_gates(sample) -> list[Gates]``: the core's gates, index ``layer * D + direction``,
  each field (B, T, H) with B = 1;
- optionally ``step_labels(sample) -> list[str]``: T labels for the time axis (tokens, frames).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmkit.errors import LstmkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="heatmaps of the gates and cell state of a trained model",
        description="Plot the input, forget and output gates and the cell state of one "
        "LSTM layer over one input sequence, as a PNG.",
    )
    p.add_argument("--model", required=True, help="model folder (from `lstmkit <task> train`)")
    p.add_argument(
        "--data", default=None, help="input file in the task's predict format (default: the task's built-in sample)"
    )
    p.add_argument("--index", type=int, default=0, help="which sequence of --data to trace")
    p.add_argument("--layer", type=int, default=-1, help="LSTM layer to draw (-1 = last)")
    p.add_argument("--direction", type=int, default=0, choices=[0, 1], help="0 = forward, 1 = backward")
    p.add_argument("--units", type=int, default=64, help="draw at most this many hidden units")
    p.add_argument("--out", default=None, help="output PNG (default: MODEL/gates.png)")
    p.set_defaults(func=cmd_inspect)


def select_layer(gates: list, layer: int, direction: int, directions: int):
    """``gates[layer * D + direction]`` with Python-style negative ``layer``."""
    layers = len(gates) // directions
    if not -layers <= layer < layers:
        raise LstmkitError(f"--layer {layer}: the model has {layers} layer(s)")
    if direction >= directions:
        raise LstmkitError(f"--direction {direction}: the model is not bidirectional")
    return gates[(layer % layers) * directions + direction], layer % layers


def inspect_model(
    model: str,
    data: str | None = None,
    index: int = 0,
    layer: int = -1,
    direction: int = 0,
    units: int = 64,
    out: str | None = None,
) -> Path:
    """Python API behind ``lstmkit inspect``; returns the PNG path."""
    import lstmkit
    from lstmkit.plots import plot_gates

    predictor = lstmkit.load(model)
    if not hasattr(predictor, "trace_gates") or not hasattr(predictor, "inspect_sample"):
        raise LstmkitError(f"{model}: this task's predictor does not support inspect")
    sample = predictor.inspect_sample(data, index)
    gates = predictor.trace_gates(sample)
    if not gates:
        raise LstmkitError(f"{model}: the predictor returned no gates")
    directions = int(getattr(predictor, "num_directions", 0) or (2 if len(gates) % 2 == 0 and _is_bidi(model) else 1))
    chosen, layer_no = select_layer(list(gates), layer, direction, directions)
    labels = predictor.step_labels(sample) if hasattr(predictor, "step_labels") else None
    out_path = Path(out) if out else Path(model) / "gates.png"
    name = "forward" if direction == 0 else "backward"
    title = f"{Path(model).name}: layer {layer_no}" + (f" ({name})" if directions == 2 else "")
    return plot_gates(chosen, out_path, labels=labels, title=title, max_units=units)


def _is_bidi(model: str) -> bool:
    from lstmkit.io import read_config

    return bool(read_config(model).get("bidirectional", False))


def cmd_inspect(args: argparse.Namespace) -> int:
    if args.units < 1:
        raise LstmkitError(f"--units must be >= 1 (got {args.units})")
    path = inspect_model(args.model, args.data, args.index, args.layer, args.direction, args.units, args.out)
    print(path)
    return 0
