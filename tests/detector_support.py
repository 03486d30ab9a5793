"""Helpers of the detector tests: engines with a fake timer, trades, and stand-ins for the
indicator module types when the real ones (trademesh.core.detector.modules.indicators) are absent."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.module import (
    Category,
    Inputs,
    Module,
    ModuleSpec,
    Outputs,
    Param,
    ParamKind,
    Port,
)
from trademesh.core.detector.engine.values import PortType, TradeValue
from trademesh.marketdata.v1 import marketdata_pb2 as md

S = 1_000_000_000
BASE_NS = 1_700_000_000 * S

Params = Mapping[str, int | float | bool | str]


class FakeTimer:
    """A timer the test moves: each read returns the current value."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class SlowTimer:
    """`step_ns` pass between any two reads: every step the engine times takes that long."""

    def __init__(self, step_ns: int = 3_000_000) -> None:
        self.ns = 0
        self.step_ns = step_ns

    def __call__(self) -> int:
        self.ns += self.step_ns
        return self.ns


def engine(catalog: Catalog | None = None, **config: object) -> Engine:
    return Engine(catalog or Catalog.builtin(), FakeTimer(), EngineConfig(**config))  # type: ignore[arg-type]


def market_trade(
    ts: int, price: float, trade_id: str = "", symbol: str = "BTC-USDT", recv_ns: int = 0, size: float = 1.0
) -> md.MarketEvent:
    """A venue's trade as the detector's feed hands it to the runner."""
    return md.MarketEvent(
        symbol=symbol,
        ts_event_ns=ts,
        ts_recv_ns=recv_ns,
        trade=md.Trade(trade_id=trade_id, price=repr(price), size=repr(size), taker_side=common.SIDE_BUY),
    )


def trade(
    ts: int,
    price: float,
    size: float = 1.0,
    trade_id: str = "",
    symbol: str = "BTC-USDT",
    taker_buy: bool | None = None,
) -> TradeValue:
    return TradeValue(symbol, ts, price, size, taker_buy, trade_id)


# ---- stand-ins for the indicator types (the real ones replace them once merged)


def _number_spec(type_name: str, outputs: tuple[Port, ...], params: tuple[Param, ...]) -> ModuleSpec:
    return ModuleSpec(
        type_name,
        Category.INDICATOR,
        f"stand-in {type_name}",
        inputs=(Port("value", PortType.NUMBER),),
        outputs=outputs,
        params=params,
    )


class _Mean(Module):
    """A plain moving mean of the fresh input values: enough to run an example strategy."""

    outputs: tuple[str, ...] = ("value",)

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.window: deque[float] = deque(maxlen=int(params["period"]))

    @property
    def warmup(self) -> int:
        return int(self.params["period"])

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        value = inputs["value"]
        if not inputs.is_fresh("value") or not isinstance(value, float):
            return {}
        self.window.append(value)
        mean = sum(self.window) / len(self.window)
        return dict.fromkeys(self.outputs, mean)


def _period() -> Param:
    return Param("period", ParamKind.INT, 14, minimum=1, maximum=10_000)


def _stand_in(
    type_name: str, outputs: tuple[str, ...] = ("value",), extra: tuple[Param, ...] = ()
) -> type[Module]:
    ports = tuple(Port(name, PortType.NUMBER) for name in outputs)
    spec = _number_spec(type_name, ports, (_period(), *extra))
    return type(f"StandIn_{type_name}", (_Mean,), {"spec": spec, "outputs": outputs})


class StandInVolumeSpike(_Mean):
    spec = _number_spec(
        "volume_spike",
        (Port("ratio", PortType.NUMBER), Port("spike", PortType.BOOLEAN)),
        (_period(), Param("factor", ParamKind.FLOAT, 2.0, minimum=0.0)),
    )
    outputs = ("ratio",)

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        mean = super().step(inputs, now_ns).get("ratio")
        value = inputs["value"]
        if not isinstance(mean, float) or not isinstance(value, float) or mean == 0:
            return {}
        ratio = value / mean
        return {"ratio": ratio, "spike": ratio >= float(self.params["factor"])}


class StandInBookImbalance(Module):
    spec = ModuleSpec(
        "book_imbalance",
        Category.INDICATOR,
        "stand-in",
        inputs=(Port("book", PortType.BOOK),),
        outputs=(Port("value", PortType.NUMBER),),
        params=(Param("levels", ParamKind.INT, 5, minimum=1, maximum=100),),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        return {"value": 0.0}


class StandInTradeFlow(Module):
    spec = ModuleSpec(
        "trade_flow_imbalance",
        Category.INDICATOR,
        "stand-in",
        inputs=(Port("trade", PortType.TRADE),),
        outputs=(Port("value", PortType.NUMBER),),
        params=(_period(),),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        return {"value": 0.0}


STAND_INS: tuple[type[Module], ...] = (
    _stand_in("ema"),
    _stand_in("rsi"),
    _stand_in("zscore"),
    _stand_in("bollinger", ("middle", "upper", "lower"), (Param("k", ParamKind.FLOAT, 2.0, minimum=0.0),)),
    StandInVolumeSpike,
    StandInBookImbalance,
    StandInTradeFlow,
)


def catalog_with_indicators() -> Catalog:
    """The built-in catalog, with a stand-in for each indicator type it does not have yet."""
    catalog = Catalog.builtin()
    catalog.register_all(cls for cls in STAND_INS if cls.spec.type not in catalog.types)
    return catalog
