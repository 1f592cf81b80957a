"""Settings declared once (lstmkit.config): types, ranges, choices, sections, the flat spellings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from lstmkit.config import ConfigError, Settings, read_toml, section, setting


@dataclass
class Inner(Settings):
    size: int = setting(8, ge=1, help="units")
    max_len: int = setting(3, ge=1, help="a two-word name")
    rate: float = setting(0.0, ge=0, lt=1, help="a probability")
    both: bool = setting(False, help="a switch")


@dataclass
class Switch(Settings):
    on: bool = setting(False, help="on or off")


@dataclass
class Outer(Settings):
    kind: Literal["a", "b"] = setting("a", help="which")
    quantiles: list[float] = setting([], gt=0, lt=1, help="levels")
    limit: int | None = setting(None, ge=1, help="optional cap")
    name: str = setting("x", help="a name")
    inner: Inner = section(Inner, size=16)
    switch: Switch = section(Switch, fixed={"on": True})

    def check(self) -> None:
        if self.kind == "b" and not self.quantiles:
            raise self.error("quantiles", "must be given with --kind b")


@dataclass
class Twice(Settings):
    size: int = setting(1, help="clashes with inner.size")
    inner: Inner = section(Inner)


def test_defaults_sections_and_round_trip():
    o = Outer()
    assert o.inner.size == 16 and Inner().size == 8  # the owner's default, the class's own untouched
    assert o.switch.on is True
    d = o.to_dict()
    assert d["inner"] == {"size": 16, "max_len": 3, "rate": 0.0, "both": False}
    assert Outer.from_dict(d) == o
    assert Outer.from_dict({}) == o  # missing keys: defaults, sections with their owner's defaults
    assert Outer.from_dict({"inner": {"rate": 0.5}}).inner.size == 16
    assert [leaf.name for leaf in Outer.leaves()][:5] == ["kind", "quantiles", "limit", "name", "size"]


def test_flat_spellings_and_text_parsing():
    o = Outer().build({"size": 4, "max-len": 7, "rate": 0.25}, quantiles=[0.1, 0.9])
    assert (o.inner.size, o.inner.max_len, o.inner.rate, o.quantiles) == (4, 7, 0.25, [0.1, 0.9])
    t = Outer().build({"quantiles": "0.1, 0.5", "limit": "none", "both": "true", "size": "3"}, text=True)
    assert (t.quantiles, t.limit, t.inner.both, t.inner.size) == ([0.1, 0.5], None, True, 3)
    assert Outer().build(size=2.0).inner.size == 2  # an integral float is an integer
    assert Outer().flat()["size"] == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 0}, "size (--size) must be >= 1, got 0"),
        ({"rate": 1.0}, "rate (--rate) must be < 1, got 1"),
        ({"rate": float("nan")}, "rate (--rate) must be a finite number, got nan"),
        ({"quantiles": [0.5, 1.5]}, "quantiles (--quantiles) each value must be < 1, got 0.5,1.5"),
        ({"kind": "c"}, "kind (--kind) must be one of a, b, got 'c'"),
        ({"size": "3"}, "size (--size) must be an integer, got '3'"),
        ({"size": 2.5}, "size (--size) must be an integer, got 2.5"),
        ({"both": 1}, "both (--both) must be true or false, got 1"),
        ({"quantiles": "0.5"}, "quantiles (--quantiles) must be a list, got '0.5'"),
        ({"kind": "b"}, "quantiles (--quantiles) must be given with --kind b"),
        ({"limit": 0}, "limit (--limit) must be >= 1, got 0"),
        ({"sise": 3}, "unknown setting 'sise' (did you mean size?)"),
    ],
)
def test_every_bad_value_is_one_message_naming_the_setting(change, message):
    with pytest.raises(ConfigError) as info:
        Outer().build(change)
    assert str(info.value) == message


def test_fixed_values_and_nested_dicts_are_checked_too():
    with pytest.raises(ConfigError, match="on .--on. is fixed to true here, got false"):
        Outer.from_dict({"switch": {"on": False}}, source="config.json")
    with pytest.raises(ConfigError, match="on .--on. is fixed to true here"):
        Outer().build(on=False)
    with pytest.raises(ConfigError, match=r"^config.json: unknown setting 'inner.nope'"):
        Outer.from_dict({"inner": {"nope": 1}}, source="config.json")
    with pytest.raises(ConfigError, match="inner: expected a table of settings"):
        Outer.from_dict({"inner": 3})
    with pytest.raises(TypeError, match="declared twice"):
        Twice.leaves()


def test_toml_flat_or_in_tables(tmp_path):
    path = tmp_path / "c.toml"
    # nested tables are opened: the keys are flat names wherever they stand
    path.write_text('kind = "b"\nquantiles = [0.2]\n[inner]\nsize = 5\nrate = 0.5\n')
    o = Outer().build(read_toml(path, Outer), source=str(path))
    assert (o.kind, o.quantiles, o.inner.size, o.inner.rate) == ("b", [0.2], 5, 0.5)
    path.write_text("size = 0\n")
    with pytest.raises(ConfigError, match=f"^{path}: size .--size. must be >= 1"):
        Outer().build(read_toml(path, Outer), source=str(path))
    for text, message in [
        ("[inerr]\nsize = 5\n", "unknown table [inerr] (did you mean inner?)"),
        ("[inner]\nkind = 'b'\n", "unknown setting [inner] 'kind'"),
        ("size = 5\n[inner]\nsize = 6\n", "[inner] size sets size (--size) a second time"),
        ("max_len = 5\nmax-len = 6\n", "max-len sets max_len (--max-len) a second time"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            read_toml(path, Outer)
        assert str(info.value) == f"{path}: {message}"


def test_fixed_values_may_be_repeated_but_not_changed():
    assert Outer().build(on=True).switch.on is True
    path_value = Outer.from_dict({"switch": {"on": True}})
    assert path_value.switch.on is True


def test_nested_section_defaults_are_merged_not_replaced():
    @dataclass
    class Top(Settings):
        outer: Outer = section(Outer, kind="b", quantiles=[0.5], inner={"rate": 0.5})

    t = Top()
    assert (t.outer.kind, t.outer.inner.rate, t.outer.inner.size) == ("b", 0.5, 16)  # size: Outer's own default
    assert Top.from_dict({"outer": {"inner": {"size": 2}}}).outer.inner.rate == 0.5
