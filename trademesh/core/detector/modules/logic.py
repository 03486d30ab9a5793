"""Logic modules: comparisons, crossings, boolean gates, and the stateful conditions
(hysteresis, hold-for, cooldown). Booleans with no value yet count as false.

Each is written as its kernel (trademesh.core.detector.engine.kernel): parameters and wiring bound at
the plan's build, the state on the module, and only a changed `out` answered."""

from __future__ import annotations

import operator
from collections.abc import Callable

from trademesh.core.detector.engine.kernel import UNCHANGED, Inline, Kernel
from trademesh.core.detector.engine.module import Category, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.values import PortType, Value
from trademesh.core.detector.modules._common import Params, Retunable, answer, number
from trademesh.core.platform.errors import InvalidArgument

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
_GATE_PORTS = ("a", "b", "c", "d")


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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        op, last = _OPS[str(self.params["op"])], self.last
        constant = float(self.params["value"])
        wired = "b" in connected

        def compare(a: Value, b: Value) -> object:
            x = a if type(a) is float else number(a)
            y = (b if type(b) is float else number(b)) if wired else constant
            out = None if x is None or y is None else op(x, y)
            old = last[0]  # answer() inlined: the trend example's hottest module kind
            if old == out and type(old) is type(out):
                return UNCHANGED
            last[0] = out
            return out

        # Two floats (or a float and the constant), written out for the generated walk: op
        # answers a bool, so `is` the last answer is "the same".
        lines = ["t_a = {0}", "t_b = {1}" if wired else "t_b = {constant}"]
        lines += ["if type(t_a) is float and type(t_b) is float:" if wired else "if type(t_a) is float:"]
        lines += ["    t_v = {op}(t_a, t_b)", "    if {last}[0] is t_v:", "        r = U", "    else:"]
        lines += ["        {last}[0] = r = t_v", "else:", "    r = {call}(t_a, {1})"]
        inline = Inline(tuple(lines), {"op": op, "last": last, "constant": constant})
        return Kernel(compare, ("a", "b"), inline=inline)


class _Crosses(Retunable):
    above = True

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._side: bool | None = None  # was a above b at the last step with both

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, above = self.last, self.above
        level = float(self.params["level"])
        wired = "b" in connected

        def crosses(a: Value, b: Value) -> object:
            x, y = number(a), number(b) if wired else level
            if x is None or y is None:
                return answer(last, False)
            side = x > y if above else x < y
            crossed = side and self._side is False
            self._side = side
            return answer(last, crossed)

        return Kernel(crosses, ("a", "b"))


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


class _Gate(Retunable):
    """Over its connected inputs (a true one is `is True`: no value counts as false)."""

    any_of = False  # Or: any connected input true; And: all of them

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, combine = self.last, any if self.any_of else all

        def gate(*flags: Value) -> object:
            return answer(last, combine([flag is True for flag in flags]))

        return Kernel(gate, tuple(port for port in _GATE_PORTS if port in connected))


class And(_Gate):
    spec = ModuleSpec(
        type="and",
        category=Category.LOGIC,
        description="True when every connected input is.",
        inputs=_gate_inputs(),
        outputs=_out(),
    )


class Or(_Gate):
    spec = ModuleSpec(
        type="or",
        category=Category.LOGIC,
        description="True when any connected input is.",
        inputs=_gate_inputs(),
        outputs=_out(),
    )
    any_of = True


class Not(Retunable):
    spec = ModuleSpec(
        type="not",
        category=Category.LOGIC,
        description="True when a is not.",
        inputs=(Port("a", PortType.BOOLEAN),),
        outputs=_out(),
    )

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last = self.last

        def negate(a: Value) -> object:
            return answer(last, a is not True)

        return Kernel(negate, ("a",))


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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, high, low = self.last, float(self.params["high"]), float(self.params["low"])

        def band(value: Value) -> object:
            x = number(value)
            if x is not None:
                if x > high:
                    self._on = True
                elif x < low:
                    self._on = False
            return answer(last, self._on)

        return Kernel(band, ("value",))


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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, steps = self.last, int(self.params["steps"])
        duration_ns = float(self.params["duration_s"]) * _NS

        def hold(a: Value, fresh: bool, now_ns: int) -> object:
            if a is not True:
                self._count, self._since_ns = 0, None
                return answer(last, False)
            if fresh or self._since_ns is None:
                self._count += 1
            if self._since_ns is None:
                self._since_ns = now_ns
            held_ns = now_ns - self._since_ns
            return answer(last, self._count >= steps and held_ns >= duration_ns)

        return Kernel(hold, ("a",), ("a",), now=True)


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

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, duration_ns = self.last, int(float(self.params["duration_s"]) * _NS)

        def cool(a: Value, now_ns: int) -> object:
            if a is not True or (self._until_ns is not None and now_ns < self._until_ns):
                return answer(last, False)
            self._until_ns = now_ns + duration_ns
            return answer(last, True)

        return Kernel(cool, ("a",), now=True)
