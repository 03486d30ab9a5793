"""Math modules: arithmetic on numbers, abs, clamp, and lag. An operand with no value gives no
value; x / 0 gives no value (None), never an infinity."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable

from trademesh.core.detector.engine.kernel import UNCHANGED, Kernel
from trademesh.core.detector.engine.module import Category, KernelModule, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.values import PortType, Value
from trademesh.core.detector.modules._common import Params, Retunable, answer, number
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["Abs", "Add", "Clamp", "Divide", "Lag", "Multiply", "Subtract"]


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def _binary_spec(kind: str, symbol: str) -> ModuleSpec:
    return ModuleSpec(
        type=kind,
        category=Category.MATH,
        description=f"a {symbol} b, or a {symbol} value when b is not connected.",
        inputs=(
            Port("a", PortType.NUMBER),
            Port("b", PortType.NUMBER, "When not connected, the `value` parameter is b", optional=True),
        ),
        outputs=(Port("out", PortType.NUMBER),),
        params=(Param("value", ParamKind.FLOAT, 0.0, "The constant b when b is not connected"),),
    )


_OPS: dict[str, Callable[[float, float], float | None]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": _divide,
}


class _Binary(Retunable):
    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, op = self.last, _OPS[self.spec.type]
        constant, wired = float(self.params["value"]), "b" in connected

        def binary(a: Value, b: Value) -> object:
            x, y = number(a), number(b) if wired else constant
            return answer(last, None if x is None or y is None else op(x, y))

        return Kernel(binary, ("a", "b"))


class Add(_Binary):
    spec = _binary_spec("add", "+")


class Subtract(_Binary):
    spec = _binary_spec("subtract", "-")


class Multiply(_Binary):
    spec = _binary_spec("multiply", "*")


class Divide(_Binary):
    spec = _binary_spec("divide", "/")


class Abs(Retunable):
    spec = ModuleSpec(
        type="abs",
        category=Category.MATH,
        description="|a|.",
        inputs=(Port("a", PortType.NUMBER),),
        outputs=(Port("out", PortType.NUMBER),),
    )

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last = self.last

        def absolute(a: Value) -> object:
            x = number(a)
            return answer(last, None if x is None else abs(x))

        return Kernel(absolute, ("a",))


class Clamp(Retunable):
    spec = ModuleSpec(
        type="clamp",
        category=Category.MATH,
        description="a limited to [low, high].",
        inputs=(Port("a", PortType.NUMBER),),
        outputs=(Port("out", PortType.NUMBER),),
        params=(Param("low", ParamKind.FLOAT, 0.0), Param("high", ParamKind.FLOAT, 1.0)),
    )

    def __init__(self, params: Params) -> None:
        self.check(params)
        super().__init__(params)

    def check(self, params: Params) -> None:
        if float(params["low"]) > float(params["high"]):
            raise InvalidArgument.field("low", f"low ({params['low']}) is above high ({params['high']})")

    def kernel(self, connected: frozenset[str]) -> Kernel:
        last, low, high = self.last, float(self.params["low"]), float(self.params["high"])

        def clamp(a: Value) -> object:
            x = number(a)
            return answer(last, None if x is None else min(max(x, low), high))

        return Kernel(clamp, ("a",))


class Lag(KernelModule):
    spec = ModuleSpec(
        type="lag",
        category=Category.MATH,
        description="The value of a `steps` new values ago (none until there are that many).",
        inputs=(Port("a", PortType.NUMBER),),
        outputs=(Port("out", PortType.NUMBER),),
        params=(Param("steps", ParamKind.INT, 1, "How many values back", 1, 100_000),),
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._window: deque[float | None] = deque(maxlen=int(params["steps"]) + 1)

    @property
    def warmup(self) -> int:
        return int(self.params["steps"])

    def kernel(self, connected: frozenset[str]) -> Kernel:
        window = self._window
        size = window.maxlen

        def lag(a: Value, fresh: bool) -> object:
            if not fresh:
                return UNCHANGED
            window.append(number(a))
            return window[0] if len(window) == size else None

        return Kernel(lag, ("a",), ("a",))
