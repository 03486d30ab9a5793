"""The `regime` source (trademesh.core.detector.modules.sources.RegimeSource): its parameters, its values,
its routing and told state, and the example that gates its entries on the regime
(trademesh/core/detector/strategies/regime/trend_regime.toml); the pure part of the live feed
(trademesh.core.detector.regime_feed.regime_values)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.detector_support import BASE_NS, S, engine, trade
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.io import RegimeValue
from trademesh.core.detector.engine.module import Inputs
from trademesh.core.detector.engine.outputs import Evaluation
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.detector.modules.sources import REGIME_CODES, RegimeSource
from trademesh.core.detector.regime_feed import REGIME_FROM_PB, regime_values
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.strategy_file import build_patches, load_strategy, parse_strategy
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.platform.bus.codec import FIELD, encode_bars, encode_regimes
from trademesh.core.platform.errors import Corrupt, InvalidArgument
from trademesh.overwatch.v1 import overwatch_pb2 as ow

EXAMPLE = Path("trademesh/core/detector/strategies/regime/trend_regime.toml")
SYMBOL = "BTC/USDT"
MINUTE = 60 * S


def regime(name: Regime, symbol: str = SYMBOL, venue: str = "sim", at: int = BASE_NS) -> RegimeValue:
    return RegimeValue(venue, symbol, name, at - 5 * MINUTE, at)


def source(regimes: str = "trend_up") -> RegimeSource:
    return RegimeSource({"venue": "sim", "symbol": SYMBOL, "regimes": regimes})


def step(module: RegimeSource, heard: RegimeValue) -> dict[str, object]:
    assert module.feed(heard)
    return dict(module.step(Inputs(), heard.ts_event_ns))


def gate_patch(eng: Engine, regimes: str = "trend_up", patch_id: str = "g") -> Patch:
    """A patch of a regime source alone, on sim BTC/USDT, active."""
    patch = eng.create_patch(patch_id, "gated", BASE_NS, venue="sim", symbol=SYMBOL)
    patch.add_module("r", "regime", {"regimes": regimes}, BASE_NS)
    patch.activate(BASE_NS)
    return patch


def probed(eng: Engine, patch: Patch, now: int) -> dict[str, object]:
    return {u.port: u.value for u in eng.probe_updates(now) if u.patch_id == patch.id}


# ---- parameters


def test_the_catalog_describes_the_regime_source() -> None:
    described = {entry["type"]: entry for entry in Catalog.builtin().describe()}["regime"]
    assert described["category"] == "source"
    assert [p["name"] for p in described["outputs"]] == ["allowed", "regime", "known"]
    assert [p["type"] for p in described["outputs"]] == ["boolean", "number", "boolean"]
    assert [p["name"] for p in described["params"]] == ["venue", "symbol", "regimes"]


def test_an_unknown_regime_name_is_refused_naming_the_param_and_the_patch_is_unchanged() -> None:
    eng = engine()
    patch = eng.create_patch("p", "s", BASE_NS, venue="sim", symbol=SYMBOL)
    with pytest.raises(InvalidArgument) as refused:
        patch.add_module("r", "regime", {"regimes": "trend_up, sideways"}, BASE_NS)
    [violation] = refused.value.violations
    assert violation.field == "r.params.regimes"
    assert "'sideways' is not a regime" in violation.description
    assert "trend_up, trend_down, range, high_volatility, thin_liquidity" in violation.description
    assert "r" not in patch.modules and patch.version == 0
    patch.add_module("r", "regime", {"regimes": "range"}, BASE_NS)
    with pytest.raises(InvalidArgument) as retuned:
        patch.set_params("r", {"regimes": "unknown"}, BASE_NS)  # warming up is `known`, not a regime
    assert retuned.value.violations[0].field == "r.params.regimes"
    assert patch.modules["r"].params["regimes"] == "range"


def test_a_strategy_file_with_a_bad_regime_is_refused_naming_the_key() -> None:
    text = EXAMPLE.read_text().replace('regimes = "trend_up"', 'regimes = "trend_upp"')
    with pytest.raises(InvalidArgument) as refused:
        parse_strategy(text, "trend_regime.toml", Catalog.builtin())
    [violation] = refused.value.violations
    assert violation.field == "modules.regime.params.regimes"
    assert "'trend_upp' is not a regime" in violation.description


def test_a_regime_source_naming_no_regime_cannot_start() -> None:
    eng = engine()
    patch = eng.create_patch("p", "s", BASE_NS, venue="sim", symbol=SYMBOL)
    patch.add_module("r", "regime", {}, BASE_NS)
    with pytest.raises(InvalidArgument) as refused:
        patch.activate(BASE_NS)
    assert [(v.field, v.description) for v in refused.value.violations] == [("r.params", "regimes not set")]


# ---- values


def test_the_outputs_say_whether_the_regime_is_allowed_its_code_and_whether_one_is_known() -> None:
    module = source("trend_up, range")
    assert step(module, regime(Regime.UNKNOWN)) == {"allowed": False, "regime": 1.0, "known": False}
    assert step(module, regime(Regime.TREND_UP)) == {"allowed": True, "regime": 2.0, "known": True}
    # Only what changed is answered: trend_up -> range stays allowed and known.
    assert step(module, regime(Regime.RANGE)) == {"regime": 4.0}
    assert step(module, regime(Regime.RANGE)) == {}
    assert step(module, regime(Regime.THIN_LIQUIDITY)) == {"allowed": False, "regime": 6.0}


def test_the_regime_codes_are_the_wires() -> None:
    assert {regime: float(code) for code, regime in REGIME_FROM_PB.items()} == REGIME_CODES
    assert REGIME_CODES[Regime.TREND_UP] == ow.REGIME_TREND_UP


def test_a_source_takes_only_its_markets_regime_and_has_no_value_before_one() -> None:
    eng = engine()
    patch = gate_patch(eng)
    eng.probe(patch.id, "r.allowed", BASE_NS)
    assert probed(eng, patch, BASE_NS) == {"r.allowed": None}
    assert eng.on_regime(regime(Regime.TREND_UP, symbol="ETH/USDT")) == 0
    assert eng.on_regime(regime(Regime.TREND_UP, venue="other")) == 0
    assert eng.on_regime(regime(Regime.TREND_UP)) == 1
    eng.evaluate_due(BASE_NS + S)
    assert probed(eng, patch, BASE_NS + S) == {"r.allowed": True}


def test_a_patch_started_after_the_regime_was_told_hears_it_and_a_retune_reads_it_again() -> None:
    eng = engine()
    eng.on_regime(regime(Regime.RANGE))  # told before any patch runs
    patch = gate_patch(eng)
    eng.evaluate_due(BASE_NS + S)
    for port in ("r.allowed", "r.known"):
        eng.probe(patch.id, port, BASE_NS + S)
    assert probed(eng, patch, BASE_NS + S) == {"r.allowed": False, "r.known": True}
    patch.set_params("r", {"regimes": "range"}, BASE_NS + 2 * S)  # live: the source is rebuilt
    eng.evaluate_due(BASE_NS + 2 * S)
    assert probed(eng, patch, BASE_NS + 3 * S)["r.allowed"] is True


# ---- gating: the example


class Market:
    """The example's patch warmed on 40 flat 1m bars and active; a trade two seconds into each
    minute closes the minute before."""

    def __init__(self) -> None:
        self.engine: Engine = engine()
        strategy = load_strategy(EXAMPLE, Catalog.builtin())
        (self.patch,) = build_patches(self.engine, strategy, BASE_NS)
        flat = [("sim", _flat_bar(BASE_NS + i * MINUTE, 100.0 + (i % 2) / 10)) for i in range(40)]
        self.engine.warm(self.patch.id, flat)
        self.patch.activate(BASE_NS + 40 * MINUTE)
        self.now = BASE_NS + 40 * MINUTE

    def hear(self, value: Regime) -> None:
        self.engine.on_regime(regime(value, at=self.now))
        self.engine.evaluate_due(self.now)

    def rise(self, minutes: int = 12) -> Evaluation:
        out = Evaluation()
        for k in range(minutes):
            self.now += MINUTE
            at = self.now + 2 * S
            self.engine.feed("sim", trade(at, 100.0 + k, trade_id=f"t{at}", symbol=SYMBOL))
            out.extend(self.engine.evaluate_due(at))
        return out


def _flat_bar(open_ns: int, close: float) -> BarValue:
    return BarValue(SYMBOL, 60, open_ns, 100.0, 100.0, 100.0, close, 1.0, 100.0, 1)


def test_the_example_signals_in_a_trend_up_and_not_in_a_range_nor_before_a_regime_is_heard() -> None:
    trending = Market()
    trending.hear(Regime.TREND_UP)
    assert [(s.strategy_id, s.direction.value) for s in trending.rise().signals] == [("trend_regime", "long")]
    ranging = Market()
    ranging.hear(Regime.RANGE)
    assert ranging.rise().signals == []
    unheard = Market()
    assert unheard.rise().signals == []


def test_the_runner_feeds_a_regime_it_heard_at_its_next_release() -> None:
    market = Market()
    market.engine.probe(market.patch.id, "regime.allowed", market.now)

    async def run() -> None:
        runner = PatchRunner(market.engine, _ignore, clock=lambda: market.now)
        runner.hear([regime(Regime.TREND_UP, at=market.now)])
        await runner.release(market.now)

    asyncio.run(run())
    assert probed(market.engine, market.patch, market.now)["regime.allowed"] is True


async def _ignore(evaluation: Evaluation) -> None:
    return None


# ---- the live feed's entries


def test_a_regimes_entry_becomes_the_events_of_its_timeframe_in_order() -> None:
    minute, hour = TIMEFRAME_TO_PB[Timeframe.M1], TIMEFRAME_TO_PB[Timeframe.H1]
    changes = [
        ow.RegimeChange(venue="sim", symbol=SYMBOL, timeframe=minute, previous=ow.REGIME_RANGE,
                        regime=ow.REGIME_TREND_UP, since_ns=1, at_ns=2),
        ow.RegimeChange(venue="sim", symbol=SYMBOL, timeframe=hour, regime=ow.REGIME_RANGE, at_ns=3),
        ow.RegimeChange(venue="sim", symbol="ETH/USDT", timeframe=minute, regime=ow.REGIME_THIN_LIQUIDITY,
                        since_ns=4, at_ns=5),
        ow.RegimeChange(venue="sim", symbol=SYMBOL, timeframe=minute, regime=ow.REGIME_UNSPECIFIED, at_ns=6),
    ]  # fmt: skip
    fields = {FIELD: encode_regimes("overwatch/t", changes)}
    assert regime_values(fields) == [
        RegimeValue("sim", SYMBOL, Regime.TREND_UP, 1, 2),
        RegimeValue("sim", "ETH/USDT", Regime.THIN_LIQUIDITY, 4, 5),
    ]
    with pytest.raises(Corrupt):
        regime_values({FIELD: encode_bars("bars/t", [])})
