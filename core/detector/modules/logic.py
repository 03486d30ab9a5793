"""Logic modules: comparisons, crossings, boolean gates, and the stateful conditions
(hysteresis, hold-for, cooldown). Booleans with no value yet count as false."""

from __future__ import annotations

import operator
from collections.abc import Callable

from core.detector.engine.module import Category, Inputs, ModuleSpec, Outputs, Param, ParamKind, Port
from core.detector.engine.values import PortType
from core.detector.modules._common import Params, Retunable, number, operand
from core.errors import InvalidArgument

__all__ = ["And", "Compare", "Cooldown", "CrossesAbove", "CrossesBelow", "HoldFor", "Hysteresis", "Not", "Or"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_NS = 1_000_000_000


def _a_b(description_b: str) -> tuple[Port, Port]:
    return Port("a", PortType.NUMBER), Port("b", PortType.NUMBER, description_b, optional=True)


def _out() -> tuple[Port]:
    return (Port("out", PortType.BOOLEAN),)


class Compare(Retunable):
    spec = ModuleSpec(
        type="compare",
        category=Category.LOGIC,
        description="a <op> b, or a <op> value when b is not connected; no value while an operand has none.",
        inputs=_a_b("Compared with a; when not connected, the `value` parameter is"),
        outputs=_out(),
        params=(
            Param("op", ParamKind.CHOICE, ">", "The comparison", choices=tuple(_OPS)),
            Param("value", ParamKind.FLOAT, 0.0, "The constant b when b is not connected"),
        ),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        a, b = number(inputs["a"]), operand(inputs, "b", float(self.params["value"]))
        if a is None or b is None:
            return self.changed({"out": None})
        return self.changed({"out": _OPS[str(self.params["op"])](a, b)})


class _Crosses(Retunable):
    above = True

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._side: bool | None = None  # was a above b at the last step with both

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        a, b = number(inputs["a"]), operand(inputs, "b", float(self.params["level"]))
        if a is None or b is None:
            return self.changed({"out": False})
        side = a > b if self.above else a < b
        crossed = side and self._side is False
        self._side = side
        return self.changed({"out": crossed})


def _crosses_spec(kind: str, word: str) -> ModuleSpec:
    return ModuleSpec(
        type=kind,
        category=Category.LOGIC,
        description=f"True at the step where a goes {word} b (or `level`), false otherwise.",
        inputs=_a_b("The line crossed; when not connected, the `level` parameter is"),
        outputs=_out(),
        params=(Param("level", ParamKind.FLOAT, 0.0, "The level when b is not connected"),),
    )


class CrossesAbove(_Crosses):
    spec = _crosses_spec("crosses_above", "above")


class CrossesBelow(_Crosses):
    spec = _crosses_spec("crosses_below", "below")
    above = False


def _gate_inputs() -> tuple[Port, ...]:
    return (
        Port("a", PortType.BOOLEAN),
        Port("b", PortType.BOOLEAN),
        Port("c", PortType.BOOLEAN, optional=True),
        Port("d", PortType.BOOLEAN, optional=True),
    )


def _connected(inputs: Inputs) -> list[bool]:
    return [inputs[name] is True for name in ("a", "b", "c", "d") if inputs.connected(name)]


class And(Retunable):
    spec = ModuleSpec(
        type="and",
        category=Category.LOGIC,
        description="True when every connected input is.",
        inputs=_gate_inputs(),
        outputs=_out(),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        return self.changed({"out": all(_connected(inputs))})


class Or(Retunable):
    spec = ModuleSpec(
        type="or",
        category=Category.LOGIC,
        description="True when any connected input is.",
        inputs=_gate_inputs(),
        outputs=_out(),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        return self.changed({"out": any(_connected(inputs))})


class Not(Retunable):
    spec = ModuleSpec(
        type="not",
        category=Category.LOGIC,
        description="True when a is not.",
        inputs=(Port("a", PortType.BOOLEAN),),
        outputs=_out(),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        return self.changed({"out": inputs["a"] is not True})


class Hysteresis(Retunable):
    spec = ModuleSpec(
        type="hysteresis",
        category=Category.LOGIC,
        description="On when value rises above `high`, off when it falls below `low`; holds in between.",
        inputs=(Port("value", PortType.NUMBER),),
        outputs=_out(),
        params=(
            Param("high", ParamKind.FLOAT, 1.0, "On above this"),
            Param("low", ParamKind.FLOAT, 0.0, "Off below this"),
        ),
    )

    def __init__(self, params: Params) -> None:
        self.check(params)
        super().__init__(params)
        self._on = False

    def check(self, params: Params) -> None:
        if float(params["low"]) > float(params["high"]):
            raise InvalidArgument.field("low", f"low ({params['low']}) is above high ({params['high']})")

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        value = number(inputs["value"])
        if value is not None:
            if value > float(self.params["high"]):
                self._on = True
            elif value < float(self.params["low"]):
                self._on = False
        return self.changed({"out": self._on})


class HoldFor(Retunable):
    spec = ModuleSpec(
        type="hold_for",
        category=Category.LOGIC,
        description=(
            "True once a has been true for `steps` consecutive new values and for `duration_s` "
            "seconds (both must hold); false as soon as a is not."
        ),
        inputs=(Port("a", PortType.BOOLEAN),),
        outputs=_out(),
        params=(
            Param("steps", ParamKind.INT, 1, "Consecutive true values", 1, 1_000_000),
            Param("duration_s", ParamKind.FLOAT, 0.0, "Seconds true", 0.0, 86_400.0 * 30),
        ),
        time_driven=True,
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._count = 0
        self._since_ns: int | None = None

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        if inputs["a"] is not True:
            self._count, self._since_ns = 0, None
            return self.changed({"out": False})
        if inputs.is_fresh("a") or self._since_ns is None:
            self._count += 1
        if self._since_ns is None:
            self._since_ns = now_ns
        held_ns = now_ns - self._since_ns
        done = self._count >= int(self.params["steps"]) and held_ns >= float(self.params["duration_s"]) * _NS
        return self.changed({"out": done})


class Cooldown(Retunable):
    spec = ModuleSpec(
        type="cooldown",
        category=Category.LOGIC,
        description=(
            "Passes a true as a one-step pulse, then stays false for `duration_s` seconds whatever a "
            "does; a still true after that passes again (at most one pulse per duration)."
        ),
        inputs=(Port("a", PortType.BOOLEAN),),
        outputs=_out(),
        params=(
            Param(
                "duration_s", ParamKind.FLOAT, 60.0, "Seconds suppressed after a pulse", 0.0, 86_400.0 * 30
            ),
        ),
        time_driven=True,
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._until_ns: int | None = None

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        if inputs["a"] is not True or (self._until_ns is not None and now_ns < self._until_ns):
            return self.changed({"out": False})
        self._until_ns = now_ns + int(float(self.params["duration_s"]) * _NS)
        return self.changed({"out": True})
