"""Field modules: numbers out of a bar or a trade, for the modules that take numbers."""

from __future__ import annotations

from core.detector.engine.module import Category, Inputs, Module, ModuleSpec, Outputs, Port
from core.detector.engine.values import BarValue, PortType, TradeValue

__all__ = ["BarFields", "TradeFields"]

_BAR_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume")


class BarFields(Module):
    spec = ModuleSpec(
        type="bar_fields",
        category=Category.MATH,
        description="A bar's open, high, low, close, volume and quote volume as numbers.",
        inputs=(Port("bar", PortType.BAR),),
        outputs=tuple(Port(name, PortType.NUMBER) for name in _BAR_FIELDS),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        bar = inputs["bar"]
        if not (inputs.is_fresh("bar") and isinstance(bar, BarValue)):
            return {}
        return {name: float(getattr(bar, name)) for name in _BAR_FIELDS}


class TradeFields(Module):
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

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        trade = inputs["trade"]
        if not (inputs.is_fresh("trade") and isinstance(trade, TradeValue)):
            return {}
        sign = 0.0 if trade.taker_buy is None else (1.0 if trade.taker_buy else -1.0)
        return {"price": trade.price, "size": trade.size, "signed_size": sign * trade.size}
