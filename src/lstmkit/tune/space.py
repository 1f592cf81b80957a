"""The search space of ``lstmkit <task> tune``: which settings vary, over which values.

The default space is a short, curated list of settings that matter for an LSTM (its size, depth,
dropout and learning rate, and each task's own: lookback and patching for forecast, embedding sizes,
...). Each range is centred on the task's declared default and clipped to the setting's declared
bounds (``ge``/``gt``/``le``/``lt``); sizes and learning rates are searched on a log scale. A
setting fixed by a flag or by ``--config`` is left out.

A TOML file (``--space``) changes it, one key per setting (its flat name, ``-`` or ``_``)::

    hidden_size = {low = 32, high = 256, log = true}   # a range (ints for integer settings)
    patch = {choices = [1, 8, 24]}                      # a list of values
    lookback = false                                    # not searched (its default or given value)

Every value is checked against the setting's declaration: an unknown setting, an out-of-range
bound or a bad table is one line naming the file and the key (exit 2). Torch- and Optuna-free.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lstmkit.config import Leaf, Settings, load_toml
from lstmkit.config_values import ConfigError, check_value, show, suggest

#: searched in every task whose config declares them
COMMON = ("hidden_size", "num_layers", "dropout", "lr")
#: each task's own additions to the default space
EXTRA: dict[str, tuple[str, ...]] = {
    "forecast": ("lookback", "patch"),
    "classify": ("embed_size", "word_dropout"),
    "lm": ("embed_size", "bptt"),
    "tag": ("embed_size", "char_hidden"),
    "translate": ("embed_size", "label_smoothing"),
    "speech": (),
}

#: setting -> its default range from the declared default: (low, high, log) or a tuple of choices
RULES: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "hidden_size": lambda d: (max(8, d // 4), d * 2, True),
    "embed_size": lambda d: (max(8, d // 4), d * 2, True),
    "char_hidden": lambda d: (max(8, d // 4), d * 2, True),
    "num_layers": lambda d: (1, max(3, d + 1), False),
    "dropout": lambda d: (0.0, 0.5, False),
    "word_dropout": lambda d: (0.0, 0.5, False),
    "label_smoothing": lambda d: (0.0, 0.3, False),
    "lr": lambda d: (d / 10, d * 10, True),
    "lookback": lambda d: (max(2, d // 4), d * 2, True),
    "bptt": lambda d: (max(2, d // 4), d * 2, True),
    "patch": lambda d: ("choices", 0, 1, 2, 4, 8, 16),  # 0: the task's automatic patch (lookback // 4)
}

#: never searched: the tune's own budget
NOT_SEARCHED = {"max_time": "--max-time is the whole tune's budget"}


@dataclass(frozen=True)
class Param:
    """One searched setting: a range ``[low, high]`` (integers when ``integer``; ``log`` scale) or
    a list of ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        """This setting's value in an Optuna ``trial`` (which may have it fixed: an enqueued run)."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this parameter can take."""
        if self.choices is not None:
            return any(value == c and type(value) is type(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        assert self.low is not None and self.high is not None
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())

    def describe(self) -> str:
        """``hidden_size 32..256 (log)`` / ``patch one of 0, 1, 4``."""
        if self.choices is not None:
            return f"{self.name} one of {', '.join(show(c) for c in self.choices)}"
        return f"{self.name} {show(self.low)}..{show(self.high)}{' (log)' if self.log else ''}"


def build_space(task: str, cls: type[Settings], fixed: Iterable[str], path: str | None = None) -> list[Param]:
    """The space of ``task`` (settings class ``cls``): the default one without the ``fixed``
    settings, changed by the TOML file ``path``. Raises :class:`ConfigError` on a bad file or an
    empty space."""
    fixed = set(fixed)
    index = {leaf.name: leaf for leaf in cls.leaves()}
    defaults = cls().flat()
    space: dict[str, Param] = {}
    for name in (*COMMON, *EXTRA.get(task, ())):
        leaf = index.get(name)
        if leaf is not None and name not in fixed and _searchable(leaf):
            space[name] = _default_param(leaf, defaults[name])
    if path is not None:
        for name, param in read_space(path, cls, fixed).items():
            if param is None:
                space.pop(name, None)
            else:
                space[name] = param
    if not space:
        raise ConfigError("tune: nothing to search (every setting of the space is fixed); see --space")
    return list(space.values())


def default_params(base: Settings, space: Iterable[Param]) -> dict[str, Any]:
    """The values ``base`` gives the searched settings, where the space holds them: the first trial
    runs them, so that the tune is measured against the settings it starts from."""
    flat = base.flat()
    return {p.name: flat[p.name] for p in space if p.contains(flat[p.name])}


def _searchable(leaf: Leaf) -> bool:
    return leaf.spec.cli and not leaf.fixed and leaf.name not in NOT_SEARCHED


def _default_param(leaf: Leaf, default: Any) -> Param:
    """The curated range of ``leaf`` around its ``default``, clipped to the declared bounds."""
    rule = RULES[leaf.name](default)
    if rule[0] == "choices":
        return Param(leaf.name, choices=tuple(rule[1:]))
    low, high, log = rule
    integer = _number_type(leaf.type) is int
    return Param(leaf.name, _clip(leaf, low, integer), _clip(leaf, high, integer), log, integer)


def _clip(leaf: Leaf, value: float, integer: bool) -> float:
    """``value`` moved inside the declared bounds of ``leaf`` (ints stay ints)."""
    s = leaf.spec
    if s.ge is not None and value < s.ge:
        value = s.ge
    if s.gt is not None and value <= s.gt:
        value = s.gt + 1 if integer else math.nextafter(s.gt, math.inf)
    if s.le is not None and value > s.le:
        value = s.le
    if s.lt is not None and value >= s.lt:
        value = s.lt - 1 if integer else math.nextafter(s.lt, -math.inf)
    return int(value) if integer else float(value)


def _number_type(tp: Any) -> type | None:
    """int or float for a numeric setting (optional or not), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else None
    return tp if tp in (int, float) else None


# ============================================================================ the --space file
def read_space(path: str, cls: type[Settings], fixed: set[str]) -> dict[str, Param | None]:
    """``{setting: Param}`` from a ``--space`` TOML file (None: not searched), every entry checked
    against the declarations of ``cls``."""
    data = load_toml(path, f"--space {path}")
    index = {leaf.name: leaf for leaf in cls.leaves()}
    out: dict[str, Param | None] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        leaf = index.get(name)
        where = f"--space {path}: {key}"
        if leaf is None:
            raise ConfigError(f"--space {path}: unknown setting {key!r}{suggest(name, index)}", name)
        if name in fixed and value is not False:
            raise ConfigError(f"{where}: fixed by a flag or --config, so it cannot be searched too", name)
        if not _searchable(leaf):
            why = NOT_SEARCHED.get(name, "fixed for this task")
            raise ConfigError(f"{where}: cannot be searched ({why})", name)
        if name in out:
            raise ConfigError(f"{where}: given a second time", name)
        out[name] = None if value is False else _param(where, leaf, value)
    return out


def _param(where: str, leaf: Leaf, table: Any) -> Param:
    """One ``--space`` entry: ``{low, high[, log]}`` or ``{choices}``, checked against ``leaf``."""
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"{where}: expected a table like {{low = 1, high = 8}} or {{choices = [...]}}, or false; got {show(table)}",
            leaf.name,
        )
    unknown = sorted(set(table) - {"low", "high", "log", "choices"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (keys: low, high, log, choices)", leaf.name)
    if typing.get_origin(leaf.type) in (list, tuple):
        raise ConfigError(f"{where}: a list setting cannot be searched", leaf.name)
    if "choices" in table:
        return _choices(where, leaf, table)
    return _range(where, leaf, table)


def _choices(where: str, leaf: Leaf, table: Mapping[str, Any]) -> Param:
    """``{choices = [...]}``: each value valid for the setting; no other key."""
    if set(table) != {"choices"}:
        raise ConfigError(f"{where}: choices go alone (no low, high or log with them)", leaf.name)
    values = table["choices"]
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: choices must be a non-empty list, got {show(values)}", leaf.name)
    checked: list[Any] = []
    for v in values:
        v = _checked(f"{where}: choices", leaf, v)
        if v not in checked:
            checked.append(v)
    return Param(leaf.name, choices=tuple(checked))


def _range(where: str, leaf: Leaf, table: Mapping[str, Any]) -> Param:
    """``{low, high[, log]}`` for a numeric setting, both bounds valid, low <= high, low > 0 on log."""
    kind = _number_type(leaf.type)
    if kind is None:
        raise ConfigError(f"{where}: not a number: give {{choices = [...]}}", leaf.name)
    if "low" not in table or "high" not in table:
        raise ConfigError(f"{where}: needs both low and high (or choices)", leaf.name)
    low = _checked(f"{where}: low", leaf, table["low"])
    high = _checked(f"{where}: high", leaf, table["high"])
    if low is None or high is None:
        raise ConfigError(f"{where}: low and high must be numbers", leaf.name)
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {show(log)}", leaf.name)
    if low > high:
        raise ConfigError(f"{where}: low {show(low)} is above high {show(high)}", leaf.name)
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {show(low)}", leaf.name)
    return Param(leaf.name, low, high, log, kind is int)


def _checked(where: str, leaf: Leaf, value: Any) -> Any:
    """``value`` as the setting takes it (its type and declared range), or a one-line error."""
    try:
        return check_value(leaf.name, value, leaf.type, leaf.spec)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}", leaf.name) from None
