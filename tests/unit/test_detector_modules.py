"""The logic and math modules, stepped directly with the time they are given."""

from __future__ import annotations

import pytest

from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.module import Inputs, Module
from trademesh.core.detector.engine.values import Value
from trademesh.core.platform.errors import InvalidArgument

S = 1_000_000_000
CATALOG = Catalog.builtin()


def build(type_name: str, **params: object) -> Module:
    module_class = CATALOG.get(type_name)
    return module_class(module_class.spec.checked_params(params))


def step(module: Module, now_ns: int = 0, fresh: bool = True, **values: Value) -> Value:
    """The module's `out` after a step (None when it did not change it)."""
    inputs = Inputs(dict(values), frozenset(values) if fresh else frozenset())
    return module.step(inputs, now_ns).get("out")


def outs(module: Module, values: list[float | bool | None], name: str = "a") -> list[Value]:
    return [module.step(Inputs({name: v}, frozenset({name})), i).get("out") for i, v in enumerate(values)]


def test_compare_uses_b_when_connected_and_the_constant_otherwise() -> None:
    compare = build("compare", op="<=", value=2.0)
    assert step(compare, a=2.0) is True
    assert step(compare, a=2.0, b=1.0) is False
    assert step(compare, a=None) is None


def test_crossings_are_true_only_at_the_crossing_step() -> None:
    assert outs(build("crosses_above", level=1.0), [0.0, 2.0, 3.0, 0.5, 1.5]) == [
        False,
        True,
        False,
        None,
        True,
    ]
    assert outs(build("crosses_below", level=1.0), [2.0, 0.0, -1.0, 2.0, 0.0]) == [
        False,
        True,
        False,
        None,
        True,
    ]


def test_a_step_answers_only_the_outputs_that_changed() -> None:
    compare = build("compare", value=0.0)
    assert outs(compare, [1.0, 2.0, -1.0, -2.0]) == [True, None, False, None]


def test_hysteresis_turns_on_above_high_and_off_below_low() -> None:
    band = build("hysteresis", high=1.0, low=-1.0)
    assert outs(band, [0.0, 1.5, 0.0, -0.5, -1.5, 0.5], "value") == [False, True, None, None, False, None]
    with pytest.raises(InvalidArgument, match="low"):
        build("hysteresis", high=0.0, low=1.0)


def test_hold_for_needs_both_the_steps_and_the_duration() -> None:
    hold = build("hold_for", steps=2, duration_s=1.0)
    assert step(hold, 0, a=True) is False
    assert step(hold, S // 2, a=True) is None  # 2 steps but 0.5 s: still false
    assert step(hold, S, fresh=False, a=True) is True  # a tick at 1 s
    assert step(hold, S + 1, a=False) is False


def test_cooldown_passes_one_pulse_per_duration() -> None:
    calm = build("cooldown", duration_s=10.0)
    assert step(calm, 0, a=True) is True
    assert step(calm, 1 * S, fresh=False, a=True) is False
    assert step(calm, 9 * S, a=True) is None
    assert step(calm, 10 * S, fresh=False, a=True) is True  # still true after the duration
    assert step(calm, 11 * S, a=False) is False


def test_gates() -> None:
    assert step(build("and"), a=True, b=True, c=False) is False
    assert step(build("and"), a=True, b=True) is True
    assert step(build("or"), a=None, b=False, d=True) is True
    assert step(build("not"), a=None) is True


def test_math() -> None:
    assert step(build("divide"), a=1.0, b=0.0) is None
    assert step(build("divide", value=4.0), a=2.0) == 0.5
    assert step(build("subtract"), a=1.0, b=3.0) == -2.0
    assert step(build("multiply", value=3.0), a=2.0) == 6.0
    assert step(build("add"), a=None, b=1.0) is None
    assert step(build("abs"), a=-2.5) == 2.5
    assert outs(build("clamp", low=0.0, high=1.0), [-1.0, 0.5, 7.0]) == [0.0, 0.5, 1.0]
    lag = build("lag", steps=2)
    assert outs(lag, [1.0, 2.0, 3.0, 4.0]) == [None, None, 1.0, 2.0]
    assert lag.step(Inputs({"a": 9.0}, frozenset()), 0) == {}  # not fresh: not a new value
