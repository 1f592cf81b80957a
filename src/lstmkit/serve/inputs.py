"""JSON request inputs -> what each task's predictor takes: the one task-aware part of serve.

``{"inputs": ...}`` of ``POST /v1/predict`` becomes a list of items and whether the request asked
for one output (a forecast table) or a list of them:

==========  ===============================================  =========================================
task        inputs                                           items
==========  ===============================================  =========================================
forecast    a table: a list of row objects (column -> value)  one DataFrame; the output is one table
            or a list of such tables                          one DataFrame each; a list of tables
speech      a list of waveforms (lists of float samples at    float32 arrays (a file path would be read
            the model's sample rate)                          on the server: refused)
others      a list of items (a string is one item)            as they are; the predictor checks them
==========  ===============================================  =========================================

Errors are :class:`~lstmkit.errors.DataError` naming the field (``inputs[2]: ...``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lstmkit.errors import DataError

#: predict options that write a file on the server: not offered over HTTP
SERVER_FILE_OPTIONS = ("plot",)

Converted = tuple[list[Any], bool]  # (items, single: the request asked for one output, not a list)


def check_options(options: Any) -> dict[str, Any]:
    """The predict options of a request (an object); file-writing options are refused."""
    if not isinstance(options, Mapping):
        raise DataError(f"options: expected an object of option -> value, got {type(options).__name__}")
    for name in SERVER_FILE_OPTIONS:
        if options.get(name) is not None:
            raise DataError(f"options.{name}: writes a file on the server, not available over HTTP")
    return dict(options)


def _forecast(inputs: Any) -> Converted:
    import pandas as pd

    if not isinstance(inputs, list):
        raise DataError(f"inputs: expected a table (a list of row objects) or a list of tables, got {_kind(inputs)}")
    if inputs and all(isinstance(r, Mapping) for r in inputs):
        return [pd.DataFrame(inputs)], True
    for i, table in enumerate(inputs):
        if not isinstance(table, list) or not all(isinstance(r, Mapping) for r in table):
            raise DataError(f"inputs[{i}]: expected a table (a list of row objects), got {_kind(table)}")
    return [pd.DataFrame(t) for t in inputs], False


def _speech(inputs: Any) -> Converted:
    import numpy as np

    items = inputs if isinstance(inputs, list) else [inputs]
    waves = []
    for i, wave in enumerate(items):
        if isinstance(wave, str):
            raise DataError(
                f"inputs[{i}]: a file path would be read on the server; send the waveform as a list of "
                "float samples at the model's sample rate"
            )
        if not isinstance(wave, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in wave):
            raise DataError(f"inputs[{i}]: expected a waveform (a list of float samples), got {_kind(wave)}")
        waves.append(np.asarray(wave, dtype=np.float32))
    return waves, False


def _items(inputs: Any) -> Converted:
    return (list(inputs) if isinstance(inputs, list) else [inputs]), False


CONVERTERS: dict[str, Callable[[Any], Converted]] = {"forecast": _forecast, "speech": _speech}


def task_inputs(task: str, inputs: Any) -> Converted:
    """``(items, single)`` for ``predictor.predict(items)`` (see the module docstring)."""
    return CONVERTERS.get(task, _items)(inputs)


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__
