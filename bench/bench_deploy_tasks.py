"""The per-task cases of bench/deploy.py: for each task, a torch predictor whose network has the task's
default sizes (random weights) around the test fixture's vocabularies and scalers, its export folder's
runtime predictor, and ``inputs(n)`` -> n inputs of a realistic length."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstmkit import default_config, load, tasks
from lstmkit.export import export_model
from lstmkit.runtime import load as load_runtime

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models"
#: the settings that size a network: taken from the task's defaults, everything else from the fixture
SIZES = ("hidden_size", "num_layers", "embed_size", "char_dim", "char_hidden")


def _sized(task: str, fixture: Any) -> Any:
    """The fixture's predictor rebuilt with the default network sizes (random weights)."""
    cfg = fixture.config.to_dict()
    default = default_config(task)
    default = default if isinstance(default, dict) else default.to_dict()
    for k in SIZES:
        if k in default and k in cfg:
            cfg[k] = default[k]
        if k in default.get("lstm", {}):
            cfg["lstm"][k] = default["lstm"][k]
    cls = tasks.task_class(task)
    config = cls.spec.config.from_dict(cfg)
    model = cls(config).build(fixture.dims)
    return cls.Predictor(config, model, fixture.dims, fixture.transforms)


def _words(p: Any) -> list[str]:
    for attr in ("encoder", "vocab"):
        v = getattr(p, attr, None)
        v = getattr(v, "vocab", v)
        if v is not None and hasattr(v, "tokens"):
            return [w for w in v.tokens if not w.startswith("<")]
    return ["der", "hund", "sieht", "ein", "katze", "mag"]


def _text_inputs(p: Any, length: int) -> Callable[[int], list[str]]:
    words = _words(p)
    rng = np.random.default_rng(0)
    return lambda n: [" ".join(rng.choice(words, size=length)) for _ in range(n)]


def _forecast_inputs(_: Any) -> Callable[[int], list[pd.DataFrame]]:
    one = pd.read_csv(FIXTURES / "forecast_input.csv")
    one = one[one["site"] == "x"]
    return lambda n: [one] * n


def _speech_inputs(_: Any) -> Callable[[int], list[str]]:
    wav = str(FIXTURES / "speech_input_0.wav")
    return lambda n: [wav] * n


INPUTS: dict[str, Callable[[Any], Callable[[int], list[Any]]]] = {
    "classify": lambda p: _text_inputs(p, 30),
    "tag": lambda p: _text_inputs(p, 20),
    "lm": lambda p: _text_inputs(p, 20),
    "translate": lambda p: _text_inputs(p, 15),
    "speech": _speech_inputs,
    "forecast": _forecast_inputs,
}


def task_cases(tmp: Path) -> Iterator[tuple[str, Any, Any, Callable[[int], list[Any]]]]:
    for task, make_inputs in INPUTS.items():
        torch_p = _sized(task, load(FIXTURES / task))
        torch_p.save(tmp / task)
        torch_p = load(tmp / task)
        ort_p = load_runtime(export_model(tmp / task, tmp / f"{task}-export"))
        yield task, torch_p, ort_p, make_inputs(torch_p)
