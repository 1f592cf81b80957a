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
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lstmkit.config_values import (
    ConfigError,
    Spec,
    check_value,
    label,
    parse_text,
    plain,
    show,
    suggest,
)

S = TypeVar("S", bound="Settings")
_META = "lstmkit"


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
    declaring the setting again. A default for a nested section is a dict of its settings
    (``section(ForecastConfig, lookback=50, lstm={"hidden_size": 64})``).
    """
    fixed = dict(fixed or {})
    meta = {_META: SectionSpec(help, dict(defaults), fixed, dict(notes or {}))}
    init = merged(defaults, fixed)
    return dataclasses.field(default_factory=lambda: cls(**_init_kwargs(cls, init, ())), metadata=meta)


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts laid over each other, later ones winning key by key (tables merged, not replaced)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


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
                            f"{label(key)} is fixed to {show(want)} here, got {show(getattr(value, key))}", key
                        )
                value.validate()
            elif isinstance(meta, Spec):
                setattr(self, f.name, check_value(f.name, value, hints[f.name], meta))
        self.check()

    def check(self) -> None:
        """Rules between fields; raise with :meth:`error`. The default has none."""

    @staticmethod
    def error(name: str, what: str, value: Any = MISSING) -> ConfigError:
        """A :class:`ConfigError` naming setting ``name``: ``raise self.error("patch", "must divide --lookback")``."""
        got = "" if value is MISSING else f", got {show(value)}"
        return ConfigError(f"{label(name)} {what}{got}", name)

    # ------------------------------------------------------------------ nested dicts (config.json)
    def to_dict(self) -> dict[str, Any]:
        """The nested settings as plain JSON values (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Settings) else plain(value)
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
                raise ConfigError(f"{where}unknown setting {key!r}{suggest(name, index)}", name)
            if text and isinstance(value, str):
                try:
                    value = parse_text(value, leaf.type, name)
                except ConfigError as e:
                    raise ConfigError(f"{where}{e}", name) from None
            node = tree
            for part in leaf.path[:-1]:
                node = node[part]
            if leaf.fixed and value != node[leaf.path[-1]]:
                raise ConfigError(f"{where}{label(name)} is fixed to {show(node[leaf.path[-1]])} here", name)
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
def load_toml(path: str | os.PathLike[str], where: str, missing: str = "file not found") -> dict[str, Any]:
    """The parsed TOML file ``path``; a missing or invalid file is a :class:`ConfigError` starting with ``where``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{where}: {missing}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: invalid TOML ({e})") from None


def read_toml(path: str | os.PathLike[str], cls: type[Settings]) -> dict[str, Any]:
    """A TOML file's settings for ``cls`` as flat ``{name: value}``.

    A key is a setting's flat name (``-`` or ``_``) at the top, or inside the table of the section
    that declares it: ``[lstm]`` ``hidden-size = 64`` and a top-level ``hidden_size = 64`` mean the
    same. Another table, a key its table does not declare, or one setting given twice is refused
    with a message naming the file.
    """
    data = load_toml(path, str(path), "config file not found")
    out: dict[str, Any] = {}
    for name, key, value in _toml_items(cls, data, str(path), ""):
        if name in out:
            raise ConfigError(f"{path}: {key} sets {label(name)} a second time", name)
        out[name] = value
    return out


def _toml_items(cls: type, data: Mapping[str, Any], source: str, table: str) -> Iterator[tuple[str, str, Any]]:
    """(flat name, key as written, value) for each key of ``data``, a table of ``cls``'s settings."""
    sections = {f.name: f for f in dataclasses.fields(cls) if isinstance(f.metadata.get(_META), SectionSpec)}
    leaves = {leaf.name for leaf in _leaves(cls)}
    where = f"[{table}] " if table else ""
    for key, value in data.items():
        name = key.replace("-", "_")
        if isinstance(value, Mapping):
            if name not in sections:
                raise ConfigError(f"{source}: unknown table {where}[{key}]{suggest(name, sections)}", name)
            yield from _toml_items(_hints(cls)[name], value, source, f"{table}.{key}" if table else key)
        elif name in leaves:
            yield name, f"{where}{key}", value
        else:
            raise ConfigError(f"{source}: unknown setting {where}{key!r}{suggest(name, dict.fromkeys(leaves))}", name)


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
            raise ConfigError(f"unknown setting {where!r}{suggest(key, fields)}", key)
        meta = f.metadata.get(_META)
        if isinstance(meta, SectionSpec):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{'.'.join((*path, key))}: expected a table of settings, got {show(value)}", key)
            layered = merged(meta.defaults, meta.fixed, value)  # the owner's defaults under the given values
            kwargs[key] = hints[key](**_init_kwargs(hints[key], layered, (*path, key)))
        else:
            kwargs[key] = value
    return kwargs
