"""One setting's value: its type, range and spellings, checked and parsed (used by :mod:`lstmkit.config`).

Messages name the setting both ways, as the command line and Python spell it:
``hidden_size (--hidden-size) must be >= 1, got 0``.
"""

from __future__ import annotations

import difflib
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from lstmkit.errors import LstmkitError


class ConfigError(LstmkitError):
    """An invalid setting; ``name`` is the flat setting name (or ``""`` for a whole file)."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.name = name


def flag(name: str) -> str:
    """The command-line flag of a setting: ``hidden_size`` -> ``--hidden-size``."""
    return "--" + name.replace("_", "-")


def label(name: str) -> str:
    """How messages name a setting: ``hidden_size (--hidden-size)``."""
    return f"{name} ({flag(name)})"


@dataclass(frozen=True)
class Spec:
    """What :func:`setting` records about one field."""

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    cli: bool = True  # offered as a command-line flag (False: run-time internals, e.g. resolved values)
    metavar: str | None = None

    def bounds(self) -> str:
        """``[>= 0, < 1]``-style text for help; empty when unbounded."""
        parts = [
            f"{op} {_num(v)}"
            for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if v is not None
        ]
        return ", ".join(parts)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            return True, (args[0] if len(args) == 1 else tp)  # X | Y | None: not a settings type
    return False, tp


def type_text(tp: Any) -> str:
    """A short name of a setting's type for help and messages."""
    optional, tp = _is_optional(tp)
    origin = get_origin(tp)
    if origin is Literal:
        text = "{" + ",".join(str(a) for a in get_args(tp)) + "}"
    elif origin in (list, tuple):
        text = f"{type_text(get_args(tp)[0])},..."
    else:
        text = {bool: "BOOL", int: "N", float: "X", str: "TEXT"}.get(tp, getattr(tp, "__name__", str(tp)))
    return text


def check_value(name: str, value: Any, tp: Any, spec: Spec) -> Any:
    """``value`` coerced to ``tp`` (int -> float, list -> tuple) and checked against ``spec``."""
    optional, inner = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{label(name)} must be set, got none", name)
    value = _coerce(name, value, inner)
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            _check_range(name, item, value, spec)
    return value


def _coerce(name: str, value: Any, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise ConfigError(f"{label(name)} must be one of {', '.join(map(str, choices))}, got {show(value)}", name)
        return value
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label(name)} must be a list, got {show(value)}", name)
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{label(name)} must have {len(args)} values, got {show(value)}", name)
            return tuple(_coerce(name, v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_coerce(name, v, item) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label(name)} must be true or false, got {show(value)}", name)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{label(name)} must be an integer, got {show(value)}", name)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label(name)} must be a number, got {show(value)}", name)
        if not math.isfinite(value):
            raise ConfigError(f"{label(name)} must be a finite number, got {show(value)}", name)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label(name)} must be text, got {show(value)}", name)
        return value
    if tp is Any:
        return value
    raise TypeError(f"setting {name}: unsupported type {tp!r}")


def _check_range(name: str, x: float, whole: Any, spec: Spec) -> None:
    for bad, what in (
        (spec.ge is not None and not x >= spec.ge, f">= {_num(spec.ge)}"),
        (spec.gt is not None and not x > spec.gt, f"> {_num(spec.gt)}"),
        (spec.le is not None and not x <= spec.le, f"<= {_num(spec.le)}"),
        (spec.lt is not None and not x < spec.lt, f"< {_num(spec.lt)}"),
    ):
        if bad:
            each = "each value " if isinstance(whole, (list, tuple)) else ""
            raise ConfigError(f"{label(name)} {each}must be {what}, got {show(whole)}", name)


def parse_text(text: str, tp: Any, name: str) -> Any:
    """A command-line string as a value of type ``tp`` (checked later by the class)."""
    optional, inner = _is_optional(tp)
    s = text.strip()
    if optional and s.lower() in ("none", "null", ""):
        return None
    origin = get_origin(inner)
    if origin in (list, tuple):
        item = get_args(inner)[0] if get_args(inner) else str
        parts = [p.strip() for p in s.split(",") if p.strip()]
        return [parse_text(p, item, name) for p in parts]
    if origin is Literal:
        choices = get_args(inner)
        for c in choices:
            if str(c) == s:
                return c
        return s  # refused by the class with the list of choices
    if inner is bool:
        low = s.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{label(name)} must be true or false, got {text!r}", name)
    if inner in (int, float):
        try:
            return inner(s) if inner is float or not any(c in s for c in ".eE") else _int_from_float(s, name)
        except ValueError:
            kind = "an integer" if inner is int else "a number"
            raise ConfigError(f"{label(name)} must be {kind}, got {text!r}", name) from None
    return s


def _int_from_float(s: str, name: str) -> int:
    v = float(s)
    if not v.is_integer():
        raise ConfigError(f"{label(name)} must be an integer, got {s!r}", name)
    return int(v)


def plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def show(value: Any) -> str:
    """A setting's value as the command line spells it (``true``, ``none``, ``0.1,0.9``, ``'text'``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (list, tuple)):
        return ",".join(show(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


def _num(x: float | None) -> str:
    if x is None:
        return "none"
    return f"{x:g}" if isinstance(x, float) else str(x)


def suggest(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
