"""The module catalog: built-ins described, and quants' own classes loaded only when valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detector_support import engine
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.platform.errors import InvalidArgument

QUANT_MODULES = """
from trademesh.core.detector.engine.module import Category, Inputs, Module, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.values import PortType

N = PortType.NUMBER


class Spread(Module):
    spec = ModuleSpec("my_spread", Category.INDICATOR, "a - b, scaled",
                      inputs=(Port("a", N), Port("b", N)), outputs=(Port("out", N),),
                      params=(Param("scale", ParamKind.FLOAT, 1.0, minimum=0.0),))

    def step(self, inputs, now_ns):
        a, b = inputs["a"], inputs["b"]
        return {"out": None if a is None or b is None else (a - b) * self.params["scale"]}


class NotAModule:
    spec = Spread.spec


class NoSpec(Module):
    def step(self, inputs, now_ns):
        return {}


class NoStep(Module):
    spec = ModuleSpec("no_step", Category.MATH, "x")


class TwicePorts(Spread):
    spec = ModuleSpec("twice", Category.MATH, "x", inputs=(Port("a", N), Port("a", N)))


class Clash(Spread):
    spec = ModuleSpec("compare", Category.LOGIC, "x")


class BadDefault(Spread):
    spec = ModuleSpec("bad_default", Category.MATH, "x",
                      params=(Param("period", ParamKind.INT, 0, minimum=1, maximum=10),))


class BadType(Spread):
    spec = ModuleSpec("Bad Type", Category.MATH, "x")


class MySource(Spread):
    spec = ModuleSpec("my_source", Category.SOURCE, "x", outputs=(Port("out", N),))
"""


@pytest.fixture
def quant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "quant_modules_t.py").write_text(QUANT_MODULES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "quant_modules_t"


def test_a_valid_custom_module_loads_and_runs_in_a_patch(quant: str) -> None:
    catalog = Catalog.builtin()
    catalog.load_custom(f"{quant}:Spread")
    assert catalog.spec("my_spread").description == "a - b, scaled"
    eng = engine(catalog)
    patch = eng.create_patch("p", "s", 0)
    patch.add_module("x", "my_spread", {"scale": 2.0}, 0)
    assert patch.modules["x"].step(_inputs(5.0, 3.0), 0) == {"out": 4.0}


def _inputs(a: float, b: float):  # type: ignore[no-untyped-def]
    from trademesh.core.detector.engine.module import Inputs

    return Inputs({"a": a, "b": b}, frozenset({"a", "b"}))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("NotAModule", "NotAModule is not a Module subclass"),
        ("NoSpec", "NoSpec.spec is not a ModuleSpec"),
        ("NoStep", "NoStep does not implement step"),
        ("TwicePorts", "inputs: 'a' is named twice"),
        ("Clash", "module type 'compare' exists already"),
        ("BadDefault", "params.period: the default does not pass: period: 0 is out of range: 1 to 10"),
        ("BadType", "'Bad Type' is not a type name"),
        ("MySource", "sources and sinks are built in"),
        ("Missing", "quant_modules_t has no Missing"),
    ],
)
def test_an_invalid_custom_module_is_refused_with_its_reason(quant: str, name: str, reason: str) -> None:
    catalog = Catalog.builtin()
    before = dict(catalog.types)
    with pytest.raises(InvalidArgument) as refused:
        catalog.load_custom(f"{quant}:{name}")
    assert reason in str(refused.value)
    assert f"{quant}:{name}" in str(refused.value)
    assert catalog.types == before


def test_a_module_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(InvalidArgument, match="cannot import no_such_package_t"):
        Catalog().load_custom("no_such_package_t.mod:Thing")


def test_describe_lists_every_builtin_with_ports_and_params() -> None:
    described = {entry["type"]: entry for entry in Catalog.builtin().describe()}
    expected = {
        "trades",
        "book",
        "trade_bars",
        "bars",
        "external",
        "external_flag",
        "strategy_position",
        "compare",
        "crosses_above",
        "crosses_below",
        "and",
        "or",
        "not",
        "hysteresis",
        "hold_for",
        "cooldown",
        "add",
        "subtract",
        "multiply",
        "divide",
        "abs",
        "clamp",
        "lag",
        "weighted_score",
        "signal",
        "position",
        "bar_fields",
        "trade_fields",
    }
    assert expected <= set(described)
    compare = described["compare"]
    assert compare["category"] == "logic"
    assert [p["name"] for p in compare["inputs"]] == ["a", "b"]
    assert compare["inputs"][1]["optional"] is True
    op = next(p for p in compare["params"] if p["name"] == "op")
    assert op["choices"] == [">", ">=", "<", "<=", "==", "!="]
    assert described["cooldown"]["time_driven"] is True
    position = described["strategy_position"]
    assert position["category"] == "source"
    assert [p["name"] for p in position["outputs"]] == ["size", "entry_price", "open", "long", "short"]
    assert {p["name"] for p in position["params"]} == {"venue", "symbol", "strategy"}


STRATEGY_WITH_CUSTOM = """
id = "custom"
venues = ["sim"]
symbols = ["BTC/USDT"]
custom_modules = ["{module}:Spread"]
cables = ["book.bid -> spread.a", "book.ask -> spread.b"]

[[modules]]
id = "book"
type = "book"

[[modules]]
id = "spread"
type = "my_spread"
params = {{ scale = 2.0 }}
"""


def test_a_strategy_file_names_its_own_module_class_which_loads_from_beside_it(tmp_path: Path) -> None:
    """The module file sits next to the strategy file, on no path: loading the file finds it."""
    module = f"quant_beside_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(QUANT_MODULES)
    path = tmp_path / "custom.toml"
    path.write_text(STRATEGY_WITH_CUSTOM.format(module=module))
    catalog = Catalog.builtin()
    strategy = load_strategy(path, catalog)
    assert catalog.spec("my_spread").description == "a - b, scaled"
    [patch] = build_patches(engine(catalog), strategy, 0)
    assert patch.modules["spread"].params["scale"] == 2.0
    again = load_strategy(path, catalog)  # the same class named twice is no clash
    assert again.id == "custom"


@pytest.mark.parametrize(
    ("custom", "reason"),
    [
        ('["no_such_quant_module:Spread"]', "cannot import no_such_quant_module"),
        ('["{module}:NoStep"]', "NoStep does not implement step"),
        ('"not a list"', "custom_modules"),
    ],
)
def test_a_bad_custom_module_in_a_strategy_file_names_the_file_and_the_key(
    tmp_path: Path, custom: str, reason: str
) -> None:
    module = f"quant_bad_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(QUANT_MODULES)
    text = STRATEGY_WITH_CUSTOM.format(module=module).replace(
        f'custom_modules = ["{module}:Spread"]', f"custom_modules = {custom.format(module=module)}"
    )
    path = tmp_path / "custom.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument) as refused:
        load_strategy(path, Catalog.builtin())
    assert reason in str(refused.value) and str(path) in str(refused.value), str(refused.value)
    assert refused.value.violations[0].field.startswith("custom_modules")
