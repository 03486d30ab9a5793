"""The indicator modules: their catalog entries, params checked by name, stepping only on fresh
input, answering only changed outputs, and the bar, trade and book adapters."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import pytest

from trademesh.core.detector.engine.module import Category, Inputs, Module, Outputs, Param, ParamKind
from trademesh.core.detector.engine.values import BarValue, BookValue, PortType, TradeValue, Value
from trademesh.core.detector.indicators import (
    Atr,
    Bollinger,
    Donchian,
    Ema,
    Macd,
    RealisedVol,
    Returns,
    Rsi,
    Sma,
    TradeFlowImbalance,
    Vwap,
    Wma,
    ZScore,
)
from trademesh.core.detector.modules.indicators import (
    INDICATOR_MODULES,
    AtrModule,
    BollingerModule,
    BookImbalanceModule,
    DonchianModule,
    EmaModule,
    MacdModule,
    RealisedVolModule,
    ReturnsModule,
    RsiModule,
    SmaModule,
    SpreadModule,
    TradeFlowImbalanceModule,
    VolumeSpikeModule,
    VwapModule,
    WmaModule,
    ZScoreModule,
)
from trademesh.core.platform.errors import InvalidArgument

TYPES = {
    "sma",
    "ema",
    "wma",
    "rsi",
    "macd",
    "atr",
    "bollinger",
    "donchian",
    "vwap",
    "zscore",
    "returns",
    "realised_vol",
    "spread",
    "book_imbalance",
    "trade_flow_imbalance",
    "volume_spike",
}
NS = 1_700_000_000_000_000_000


def fresh(**values: Value) -> Inputs:
    return Inputs(values=dict(values), fresh=frozenset(values))


def stale(**values: Value) -> Inputs:
    return Inputs(values=dict(values), fresh=frozenset())


def run(module: Module, port: str, values: Sequence[Value]) -> list[Outputs]:
    return [module.step(fresh(**{port: value}), NS + t) for t, value in enumerate(values)]


def bar(high: float, low: float, close: float) -> BarValue:
    return BarValue("BTC/USDT", 60, NS, close, high, low, close, 1.0, close, 1)


def trade(price: float, size: float, taker_buy: bool | None) -> TradeValue:
    return TradeValue("BTC/USDT", NS, price, size, taker_buy)


def book(bids: tuple[tuple[float, float], ...], asks: tuple[tuple[float, float], ...]) -> BookValue:
    return BookValue("BTC/USDT", NS, bids, asks)


def closes(count: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    prices, price = [], 100.0
    for _ in range(count):
        price = round(price + rng.gauss(0.0, 1.0), 2)
        prices.append(price)
    return prices


# ---- the catalog ----


def test_the_catalog_holds_the_sixteen_indicators_once_each() -> None:
    types = [module.spec.type for module in INDICATOR_MODULES]
    assert sorted(types) == sorted(TYPES)
    for module in INDICATOR_MODULES:
        spec = module.spec
        assert spec.category is Category.INDICATOR
        assert len(spec.description) > 40
        assert spec.inputs and spec.outputs
        assert all(port.description for port in spec.inputs + spec.outputs)


@pytest.mark.parametrize("module", INDICATOR_MODULES, ids=[m.spec.type for m in INDICATOR_MODULES])
def test_every_module_builds_from_its_defaults_and_states_its_warmup(module: type[Module]) -> None:
    for param in module.spec.params:
        assert param.check(param.default) == param.default
    assert module({}).warmup >= 1


@pytest.mark.parametrize(
    ("module", "params", "warmup"),
    [
        (SmaModule, {"period": 20}, 20),
        (RsiModule, {"period": 14}, 15),
        (MacdModule, {}, 26 + 9 - 1),
        (AtrModule, {"period": 7}, 8),
        (VolumeSpikeModule, {"period": 10}, 11),
        (ReturnsModule, {"lag": 5}, 6),
        (RealisedVolModule, {"period": 30}, 31),
        (SpreadModule, {}, 1),
    ],
)
def test_warmup_is_the_updates_until_the_first_output(
    module: type[Module], params: dict[str, int], warmup: int
) -> None:
    assert module(params).warmup == warmup


# ---- params: checked, named ----

NUMERIC_PARAMS = [
    (module, param)
    for module in INDICATOR_MODULES
    for param in module.spec.params
    if param.kind in (ParamKind.INT, ParamKind.FLOAT)
]


@pytest.mark.parametrize(
    ("module", "param"), NUMERIC_PARAMS, ids=[f"{m.spec.type}.{p.name}" for m, p in NUMERIC_PARAMS]
)
def test_a_param_out_of_its_bounds_is_refused_naming_it(module: type[Module], param: Param) -> None:
    assert param.minimum is not None and param.maximum is not None
    step = 1 if param.kind is ParamKind.INT else 0.5
    for bad in (param.minimum - step, param.maximum + step):
        value = int(bad) if param.kind is ParamKind.INT else bad
        with pytest.raises(InvalidArgument) as raised:
            module({param.name: value})
        assert [v.field for v in raised.value.violations] == [param.name]
        assert "out of range" in raised.value.violations[0].description


def test_a_param_of_the_wrong_type_or_an_unknown_one_is_refused_naming_it() -> None:
    with pytest.raises(InvalidArgument) as raised:
        SmaModule({"period": "14"})
    assert raised.value.violations[0].field == "period"
    with pytest.raises(InvalidArgument) as raised:
        SmaModule({"periods": 14})
    assert raised.value.violations[0].field == "periods"
    with pytest.raises(InvalidArgument) as raised:
        ReturnsModule({"kind": "percent"})
    assert raised.value.violations[0].field == "kind"


def test_macd_refuses_a_fast_period_not_below_the_slow_one() -> None:
    with pytest.raises(InvalidArgument) as raised:
        MacdModule({"fast": 26, "slow": 26})
    assert raised.value.violations[0].field == "fast"
    assert "less than slow" in raised.value.violations[0].description


# ---- stepping ----


def test_a_module_steps_its_indicator_only_on_fresh_input() -> None:
    module = SmaModule({"period": 3})
    assert module.step(fresh(value=1.0), NS) == {}
    assert module.step(fresh(value=2.0), NS) == {}
    # The same value seen again without being new is not a new value of the series.
    assert module.step(stale(value=2.0), NS) == {}
    assert module.step(stale(value=2.0), NS) == {}
    assert module.step(fresh(value=3.0), NS) == {"value": 2.0}
    assert module.step(stale(value=3.0), NS) == {}
    assert module.step(fresh(value=7.0), NS) == {"value": 4.0}


def test_a_module_answers_only_the_outputs_that_changed() -> None:
    sma = SmaModule({"period": 1})
    assert [sma.step(fresh(value=v), NS) for v in (5.0, 5.0, 6.0)] == [{"value": 5.0}, {}, {"value": 6.0}]
    donchian = DonchianModule({"period": 2})
    outs = run(donchian, "bar", [bar(10, 5, 7), bar(12, 6, 8), bar(11, 4, 9), bar(9, 8, 8)])
    assert outs == [
        {},
        {"upper": 12, "lower": 5, "middle": 8.5},
        {"lower": 4, "middle": 8.0},
        {"upper": 11, "middle": 7.5},
    ]


def test_unusable_values_are_ignored_without_touching_the_state() -> None:
    module = SmaModule({"period": 2})
    values: list[Value] = [1.0, math.nan, math.inf, True, trade(1.0, 1.0, True), 3.0]
    assert run(module, "value", values)[-1] == {"value": 2.0}
    atr = AtrModule({"period": 1})
    assert run(atr, "bar", [1.0, bar(math.nan, 1, 1)]) == [{}, {}]


NUMBER_MODULES = [
    (SmaModule({"period": 7}), Sma(7)),
    (EmaModule({"period": 4}), Ema(4)),
    (WmaModule({"period": 6}), Wma(6)),
    (RsiModule({"period": 5}), Rsi(5)),
    (ZScoreModule({"period": 8}), ZScore(8)),
    (ReturnsModule({"lag": 2, "kind": "log"}), Returns(2, log=True)),
    (RealisedVolModule({"period": 5, "periods_per_year": 365.0}), RealisedVol(5, 365.0)),
]


@pytest.mark.parametrize(
    ("module", "indicator"), NUMBER_MODULES, ids=[m.spec.type for m, _ in NUMBER_MODULES]
)
def test_number_modules_emit_what_their_indicator_computes(module: Module, indicator: Any) -> None:
    xs = closes(40)
    xs[20:26] = [xs[19]] * 6  # a flat stretch: unchanged outputs are not answered again
    emitted: Value = None
    for t, x in enumerate(xs):
        want = indicator.update(x)
        out = module.step(fresh(value=x), NS + t)
        if want is None or want == emitted:
            assert out == {}
        else:
            assert out == {"value": want}
            emitted = want
    assert emitted is not None


def test_macd_and_bollinger_emit_their_three_ports() -> None:
    xs = closes(80)
    macd, reference = MacdModule({"fast": 3, "slow": 6, "signal": 4}), Macd(3, 6, 4)
    bands, reference_bands = BollingerModule({"period": 5, "k": 1.5}), Bollinger(5, 1.5)
    for x in xs:
        line = reference.update(x)
        out = macd.step(fresh(value=x), NS)
        assert out == ({} if line is None else dict(zip(("line", "signal", "histogram"), line, strict=True)))
        band = reference_bands.update(x)
        out = bands.step(fresh(value=x), NS)
        assert out == ({} if band is None else dict(zip(("middle", "upper", "lower"), band, strict=True)))
    assert macd.warmup == 6 + 4 - 1


def test_atr_and_donchian_read_bars() -> None:
    rng = random.Random(5)
    bars = [bar(c + rng.uniform(0, 1), c - rng.uniform(0, 1), c) for c in closes(40)]
    atr, atr_ref = AtrModule({"period": 5}), Atr(5)
    channel, channel_ref = DonchianModule({"period": 5}), Donchian(5)
    last: dict[str, Value] = {}
    for b in bars:
        want = atr_ref.update(b.high, b.low, b.close)
        out = atr.step(fresh(bar=b), NS)
        assert out == ({} if want is None else {"value": want})
        last.update(channel.step(fresh(bar=b), NS))
        expect = channel_ref.update(b.high, b.low)
        if expect is not None:
            assert (last["upper"], last["lower"], last["middle"]) == expect


def test_vwap_and_trade_flow_read_trades() -> None:
    trades = [
        trade(100.0, 1.0, True),
        trade(101.0, 3.0, False),
        trade(102.0, 2.0, None),
        trade(103.0, 1.0, True),
    ]
    vwap, flow = VwapModule({"period": 2}), TradeFlowImbalanceModule({"period": 2})
    assert run(vwap, "trade", trades) == [
        {},
        {"value": (100.0 + 303.0) / 4.0},
        {"value": (303.0 + 204.0) / 5.0},
        {"value": (204.0 + 103.0) / 3.0},
    ]
    assert run(flow, "trade", trades) == [{}, {"value": -0.5}, {"value": -1.0}, {"value": 1.0}]
    # The module layer adds nothing to the indicators' own answers.
    assert Vwap(2).update(1.0, 0.0) is None and TradeFlowImbalance(1).update(2.0, None) == 0.0


def test_spread_and_book_imbalance_read_books() -> None:
    books = [
        book(((99.0, 2.0), (98.0, 5.0)), ((101.0, 1.0), (102.0, 4.0))),
        book(((99.0, 2.0),), ()),
        book(((99.5, 3.0), (98.0, 5.0)), ((100.5, 1.0), (102.0, 1.0))),
    ]
    spread = SpreadModule({})
    assert run(spread, "book", books) == [
        {"spread": 2.0, "bps": 200.0, "mid": 100.0},
        {},
        {"spread": 1.0, "bps": 100.0},
    ]
    imbalance = BookImbalanceModule({"levels": 1})
    assert run(imbalance, "book", books) == [{"value": 1 / 3}, {"value": 1.0}, {"value": 0.5}]
    deep = BookImbalanceModule({"levels": 2})
    assert run(deep, "book", books[:1]) == [{"value": (7.0 - 5.0) / 12.0}]


def test_volume_spike_emits_a_ratio_and_a_boolean() -> None:
    module = VolumeSpikeModule({"period": 3, "factor": 2.0})
    spec_ports = {port.name: port.type for port in module.spec.outputs}
    assert spec_ports == {"ratio": PortType.NUMBER, "spike": PortType.BOOLEAN}
    outs = run(module, "value", [10.0, 10.0, 10.0, 10.0, 40.0, 10.0, 10.0, 30.0])
    assert outs == [
        {},
        {},
        {},
        {"ratio": 1.0, "spike": False},
        {"ratio": 4.0, "spike": True},
        {"ratio": 0.5, "spike": False},
        {},
        {"ratio": 1.5},
    ]
