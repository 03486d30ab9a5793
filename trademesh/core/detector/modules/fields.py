"""Field modules: numbers out of a bar or a trade, for the modules that take numbers."""

from __future__ import annotations

from trademesh.core.detector.engine.kernel import UNCHANGED, Inline, Kernel
from trademesh.core.detector.engine.module import Category, KernelModule, ModuleSpec, Port
from trademesh.core.detector.engine.values import BarValue, PortType, TradeValue, Value

__all__ = ["BarFields", "TradeFields"]

_BAR_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume")


def _bar_fields(bar: Value, fresh: bool) -> object:
    if not (fresh and isinstance(bar, BarValue)):
        return UNCHANGED
    return (
        float(bar.open),
        float(bar.high),
        float(bar.low),
        float(bar.close),
        float(bar.volume),
        float(bar.quote_volume),
    )


def _trade_fields(trade: Value, fresh: bool) -> object:
    if not (fresh and isinstance(trade, TradeValue)):
        return UNCHANGED
    sign = 0.0 if trade.taker_buy is None else (1.0 if trade.taker_buy else -1.0)
    return trade.price, trade.size, sign * trade.size


_BAR_INLINE = Inline(
    (
        "t_b = {0}",
        "if {1} and type(t_b) is {BarValue}:",
        "    r = (float(t_b.open), float(t_b.high), float(t_b.low), float(t_b.close),"
        " float(t_b.volume), float(t_b.quote_volume))",
        "else:",
        "    r = {call}(t_b, {1})",
    ),
    {"BarValue": BarValue},
)


class BarFields(KernelModule):
    spec = ModuleSpec(
        type="bar_fields",
        category=Category.MATH,
        description="A bar's open, high, low, close, volume and quote volume as numbers.",
        inputs=(Port("bar", PortType.BAR),),
        outputs=tuple(Port(name, PortType.NUMBER) for name in _BAR_FIELDS),
    )

    def kernel(self, connected: frozenset[str]) -> Kernel:
        return Kernel(_bar_fields, ("bar",), ("bar",), inline=_BAR_INLINE, whole=True)


class TradeFields(KernelModule):
    spec = ModuleSpec(
        type="trade_fields",
        category=Category.MATH,
        description="A trade's price, size, and size signed by its taker side (+ buy, - sell, 0 unknown).",
        inputs=(Port("trade", PortType.TRADE),),
        outputs=(
            Port("price", PortType.NUMBER),
            Port("size", PortType.NUMBER),
            Port("signed_size", PortType.NUMBER),
        ),
    )

    def kernel(self, connected: frozenset[str]) -> Kernel:
        return Kernel(_trade_fields, ("trade",), ("trade",), whole=True)
