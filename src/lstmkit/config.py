"""Settings declared once: typed, nested dataclasses from which everything else is derived.

A component's settings are one dataclass deriving from :class:`Settings`. Each field is declared
with :func:`setting` (its default, help text and valid range) or :func:`section` (a nested
:class:`Settings` with the owner's own defaults). From that single declaration come:

========================  ======================================  =================================
where                     spelling                                made by
========================  ======================================  =================================
Python keyword            ``hidden_size=256`` (flat)              :meth:`Settings.build`
command-line flag         ``--hidden-size 256``                   :func:`lstmkit.cli.options.add_settings`
TOML key                  ``hidden-size = 256`` / ``hidden_size``  :func:`read_toml`, :meth:`Settings.build`
                          (flat, or inside its ``[lstm]`` table)
``config.json``           ``{"lstm": {"hidden_size": 256}}``      :meth:`Settings.to_dict` / ``from_dict``
========================  ======================================  =================================

Every leaf has one flat name, unique within its tree, so the four spellings cannot drift apart.
Validation lives with the declaration: types, ranges (``ge``/``gt``/``le``/``lt``, applied to each
element of a list) and ``Literal`` choices are checked when an instance is made, whatever made it,
and a component adds rules between fields in :meth:`Settings.check`. A failure raises
:class:`ConfigError` whose one line names the setting both ways: ``hidden_size (--hidden-size)
must be >= 1, got 0``.

This module imports nothing heavy (no torch, numpy or pandas): the command line builds every
parser from these declarations, and ``lstmkit --help`` must answer at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from lstmkit.errors import LstmkitError

S = TypeVar("S", bound="Settings")
_META = "lstmkit"


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


@dataclass(frozen=True)
class SectionSpec:
    """What :func:`section` records: help, the owner's defaults, the values it fixes and notes it
    adds to the help of some settings."""

    help: str
    defaults: Mapping[str, Any]
    fixed: Mapping[str, Any]
    notes: Mapping[str, str] = dataclasses.field(default_factory=dict)


def setting(
    default: Any = MISSING,
    *,
    help: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    cli: bool = True,
    metavar: str | None = None,
) -> Any:
    """Declare one setting: its default, one help text and its valid range.

    Lists and other mutable defaults are copied per instance. Ranges apply to numbers, and to each
    element of a list of numbers.
    """
    meta = {_META: Spec(help, ge, gt, le, lt, cli, metavar)}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(
    cls: type[S],
    help: str = "",
    fixed: Mapping[str, Any] | None = None,
    notes: Mapping[str, str] | None = None,
    **defaults: Any,
) -> Any:
    """Nest the settings ``cls`` with this owner's ``defaults``.

    ``fixed`` names values the owner does not allow to change (they are not offered as flags, and
    a config that sets them otherwise is refused): e.g. a language model's LSTM is never bidirectional.
    ``notes`` adds this owner's words to a setting's help (what the setting means here), without
    declaring the setting again.
    """
    fixed = dict(fixed or {})
    init = {**defaults, **fixed}
    meta = {_META: SectionSpec(help, dict(defaults), fixed, dict(notes or {}))}
    return dataclasses.field(default_factory=lambda: cls(**init), metadata=meta)


@dataclass(frozen=True)
class Leaf:
    """One setting of a tree, as the command line and the flat spellings see it."""

    name: str  # the flat name: keyword, TOML key, `--flag` without dashes
    path: tuple[str, ...]  # where it lives in the nested dict (config.json)
    type: Any  # the resolved annotation
    spec: Spec
    owner: type  # the Settings class that declares it
    fixed: bool = False  # fixed by an enclosing section
    note: str = ""  # what the enclosing section adds to the help


class Settings:
    """Base of every settings dataclass (see the module docstring).

    Subclasses are ``@dataclass`` classes whose fields are all :func:`setting` or :func:`section`;
    they may override :meth:`check` for rules between fields.
    """

    #: the heading of this component's options in ``--help``
    title: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field's type, range and choices, nested sections included, then :meth:`check`."""
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            meta = f.metadata.get(_META)
            if isinstance(meta, SectionSpec):
                if not isinstance(value, Settings):
                    raise ConfigError(f"{f.name}: expected a table of settings, got {value!r}", f.name)
                for key, want in meta.fixed.items():
                    if getattr(value, key) != want:
                        raise ConfigError(
                            f"{label(key)} is fixed to {_show(want)} here, got {_show(getattr(value, key))}", key
                        )
                value.validate()
            elif isinstance(meta, Spec):
                setattr(self, f.name, _checked(f.name, value, hints[f.name], meta))
        self.check()

    def check(self) -> None:
        """Rules between fields; raise with :meth:`error`. The default has none."""

    @staticmethod
    def error(name: str, what: str, value: Any = MISSING) -> ConfigError:
        """A :class:`ConfigError` naming setting ``name``: ``raise self.error("patch", "must divide --lookback")``."""
        got = "" if value is MISSING else f", got {_show(value)}"
        return ConfigError(f"{label(name)} {what}{got}", name)

    # ------------------------------------------------------------------ nested dicts (config.json)
    def to_dict(self) -> dict[str, Any]:
        """The nested settings as plain JSON values (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Settings) else _plain(value)
        return out

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any], *, source: str = "") -> S:
        """Build from a nested dict (``config.json``); unknown or mistyped keys raise naming ``source``.

        Missing keys take this class's defaults.
        """
        try:
            return cls(**_init_kwargs(cls, data, ()))
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}" if source else str(e), e.name) from None

    # ------------------------------------------------------------------ flat spellings (CLI, TOML, kwargs)
    @classmethod
    def leaves(cls) -> list[Leaf]:
        """Every setting of the tree in declaration order, sections expanded (flat names unique)."""
        return list(_leaves(cls))

    def build(
        self: S, values: Mapping[str, Any] | None = None, *, source: str = "", text: bool = False, **kwargs: Any
    ) -> S:
        """A new, validated copy with the flat settings ``values`` / ``kwargs`` changed.

        Keys are flat names with ``_`` or ``-``; ``text=True`` parses command-line strings
        (``"0.1,0.5"`` for a list, ``"none"`` for an optional value). An unknown key raises with
        the nearest known names; ``source`` prefixes every message (a file name).
        """
        flat = {**(values or {}), **kwargs}
        index = {leaf.name: leaf for leaf in self.leaves()}
        tree = self.to_dict()
        for key, value in flat.items():
            name = key.replace("-", "_")
            leaf = index.get(name)
            where = f"{source}: " if source else ""
            if leaf is None:
                raise ConfigError(f"{where}unknown setting {key!r}{_suggest(name, index)}", name)
            if leaf.fixed:
                raise ConfigError(f"{where}{label(name)} cannot be changed here", name)
            if text and isinstance(value, str):
                try:
                    value = parse_text(value, leaf.type, name)
                except ConfigError as e:
                    raise ConfigError(f"{where}{e}", name) from None
            node = tree
            for part in leaf.path[:-1]:
                node = node[part]
            node[leaf.path[-1]] = value
        return type(self).from_dict(tree, source=source)

    def flat(self) -> dict[str, Any]:
        """``{flat name: value}`` of every leaf (for messages, tuning and tracking)."""
        out = {}
        for leaf in self.leaves():
            node: Any = self
            for part in leaf.path:
                node = getattr(node, part)
            out[leaf.name] = node
        return out


# ============================================================================ TOML
def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML file's settings as flat ``{name: value}``: tables named after sections are opened,
    so ``[lstm]`` ``hidden-size = 64`` and a top-level ``hidden_size = 64`` mean the same."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    return dict(_flatten(data))


def _flatten(data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _flatten(value)
        else:
            yield key, value


# ============================================================================ types and values
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of ``cls`` (cached: dataclass fields never change)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _leaves(
    cls: type, path: tuple[str, ...] = (), fixed: frozenset[str] = frozenset(), notes: Mapping[str, str] | None = None
) -> Iterator[Leaf]:
    seen: dict[str, tuple[str, ...]] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if isinstance(meta, SectionSpec):
            sub = hints[f.name]
            for leaf in _leaves(sub, (*path, f.name), frozenset(meta.fixed), meta.notes):
                _unique(seen, leaf.name, leaf.path, cls)
                yield leaf
        elif isinstance(meta, Spec):
            _unique(seen, f.name, (*path, f.name), cls)
            note = (notes or {}).get(f.name, "")
            yield Leaf(f.name, (*path, f.name), hints[f.name], meta, cls, f.name in fixed, note)
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: declare it with setting() or section()")


def _unique(seen: dict[str, tuple[str, ...]], name: str, path: tuple[str, ...], cls: type) -> None:
    if name in seen:
        raise TypeError(f"{cls.__name__}: setting {name!r} declared twice ({'.'.join(seen[name])}, {'.'.join(path)})")
    seen[name] = path


def _init_kwargs(cls: type, data: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """Constructor arguments from a nested dict, sections built recursively with their owner's defaults."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{'.'.join(path) or 'config'}: expected a table of settings, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            where = ".".join((*path, key))
            raise ConfigError(f"unknown setting {where!r}{_suggest(key, fields)}", key)
        meta = f.metadata.get(_META)
        if isinstance(meta, SectionSpec):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{'.'.join((*path, key))}: expected a table of settings, got {_show(value)}", key)
            merged = {**meta.defaults, **meta.fixed, **value}  # the owner's defaults under the given values
            kwargs[key] = hints[key](**_init_kwargs(hints[key], merged, (*path, key)))
        else:
            kwargs[key] = value
    return kwargs


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


def _checked(name: str, value: Any, tp: Any, spec: Spec) -> Any:
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
            raise ConfigError(f"{label(name)} must be one of {', '.join(map(str, choices))}, got {_show(value)}", name)
        return value
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label(name)} must be a list, got {_show(value)}", name)
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{label(name)} must have {len(args)} values, got {_show(value)}", name)
            return tuple(_coerce(name, v, a) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_coerce(name, v, item) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label(name)} must be true or false, got {_show(value)}", name)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{label(name)} must be an integer, got {_show(value)}", name)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label(name)} must be a number, got {_show(value)}", name)
        if not math.isfinite(value):
            raise ConfigError(f"{label(name)} must be a finite number, got {_show(value)}", name)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label(name)} must be text, got {_show(value)}", name)
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
            raise ConfigError(f"{label(name)} {each}must be {what}, got {_show(whole)}", name)


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


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


def _num(x: float | None) -> str:
    if x is None:
        return "none"
    return f"{x:g}" if isinstance(x, float) else str(x)


def show(value: Any) -> str:
    """A setting's value as the command line spells it (``true``, ``none``, ``0.1,0.9``)."""
    return _show(value)


def _suggest(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
