"""What a strategy hears back from the inspector (trademesh.core.detector.feedback): its risk state as
external values, its own position as a `strategy_position` source; and the example strategy
that enters only while flat and not stood down, and exits by its own request."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.detector_support import BASE_NS, S, engine, trade
from trademesh.core.detector.config import DetectorConfig
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.io import ExternalValue, PositionValue
from trademesh.core.detector.engine.outputs import Evaluation
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.detector.feedback import FeedbackTracker, risk_values
from trademesh.core.detector.feedback_feed import InspectorFeedback
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.platform.config.mesh import MeshConfig
from trademesh.core.platform.errors import InvalidArgument
from trademesh.risk.v1 import inspector_pb2 as rk

EXAMPLE = Path("trademesh/core/detector/strategies/exits/trend_exit.toml")
SYMBOL = "BTC/USDT"


def position(
    size: float, strategy: str = "trend_exit", symbol: str = SYMBOL, at: int = BASE_NS
) -> PositionValue:
    return PositionValue(strategy, "sim", symbol, size, None if size == 0 else 100.0, at)


class Market:
    """The example's patch, warmed on 40 flat 1s bars and active; trades one a second."""

    def __init__(self) -> None:
        self.engine: Engine = engine()
        strategy = load_strategy(EXAMPLE, Catalog.builtin())
        (self.patch,) = build_patches(self.engine, strategy, BASE_NS)
        flat = [
            (
                "sim",
                BarValue(
                    SYMBOL, 1, BASE_NS + i * S, 100.0, 100.0, 100.0, 100.0 + (i % 2) / 10, 1.0, 100.0, 1
                ),
            )
            for i in range(40)
        ]
        self.engine.warm(self.patch.id, flat)
        self.patch.activate(BASE_NS + 40 * S)
        self.now = BASE_NS + 41 * S
        self.trades = 0

    def prices(self, *prices: float) -> Evaluation:
        out = Evaluation()
        for price in prices:
            self.now += S
            self.trades += 1
            self.engine.feed("sim", trade(self.now, price, trade_id=f"t{self.trades}", symbol=SYMBOL))
            out.extend(self.engine.evaluate_due(self.now))
        return out

    def hear(self, *events: ExternalValue | PositionValue) -> Evaluation:
        for event in events:
            self.engine.feed("", event)
        return self.engine.evaluate_due(self.now)


RISING = tuple(100.0 + k for k in range(10))
FALLING = tuple(110.0 - 2 * k for k in range(12))


def test_the_example_enters_while_flat_and_exits_by_its_own_close_on_the_cross_back() -> None:
    market = Market()
    entered = market.prices(*RISING)
    assert [(s.direction.value, s.strategy_id) for s in entered.signals] == [("long", "trend_exit")]
    assert entered.positions == []
    market.hear(position(0.5))
    exited = market.prices(*FALLING)
    assert exited.signals == []
    (close,) = exited.positions
    assert (close.action, close.strategy_id, close.venue, close.symbol) == (
        "close",
        "trend_exit",
        "sim",
        SYMBOL,
    )


def test_the_example_does_not_close_what_it_does_not_hold() -> None:
    market = Market()
    market.prices(*RISING)
    assert market.prices(*FALLING).positions == []


def test_the_example_does_not_enter_while_the_inspector_stands_down_or_while_it_holds() -> None:
    stood = Market()
    stood.hear(ExternalValue("inspector.stood_down", True, stood.now))
    assert stood.prices(*RISING).signals == []
    holding = Market()
    holding.hear(position(0.5))
    assert holding.prices(*RISING).signals == []
    # Stood down, then resumed: it enters again.
    resumed = Market()
    resumed.hear(ExternalValue("inspector.stood_down", True, resumed.now))
    resumed.hear(ExternalValue("inspector.stood_down", False, resumed.now))
    assert len(resumed.prices(*RISING).signals) == 1


def test_a_strategy_position_source_takes_only_its_own_strategys_position_in_its_market() -> None:
    market = Market()
    patch = market.patch
    market.engine.probe(patch.id, "position.size", market.now)
    market.hear(position(2.0, strategy="trend"), position(3.0, symbol="ETH/USDT"))
    market.hear(position(-0.25))
    updates = {u.port: u.value for u in market.engine.probe_updates(market.now + S)}
    assert updates == {"position.size": -0.25}


def _state(state: int = rk.RISK_STATE_ACTIVE, **fields: object) -> rk.GetRiskStateResponse:
    return rk.GetRiskStateResponse(state=state, ts_ns=BASE_NS, **fields)  # type: ignore[arg-type]


def _view(*shares: tuple[str, str], symbol: str = SYMBOL, legacy: bool = False) -> rk.PositionView:
    return rk.PositionView(
        venue="sim", symbol=symbol, size="1", average_price="100.5", legacy=legacy,
        strategies=[rk.Value(name=n, value=v) for n, v in shares],
    )  # fmt: skip


def test_the_risk_state_becomes_named_values() -> None:
    capital = [
        rk.CapitalUse(strategy_id="trend_exit", reserved="1000", used="250"),
        rk.CapitalUse(strategy_id="x", used="5"),
    ]
    values = risk_values(
        _state(rk.RISK_STATE_STANDING_DOWN, cooldown_until_ns=BASE_NS + 30 * S, capital=capital,
               drawdown=rk.Gauge(value="0.05"))
    )  # fmt: skip
    assert values == {
        "inspector.stood_down": True,
        "inspector.halted": False,
        "inspector.cooldown": True,
        "inspector.cooldown_s": 30.0,
        "inspector.drawdown": 0.05,
        "inspector.capital.trend_exit.used": 250.0,
        "inspector.capital.trend_exit.reserved": 1000.0,
        "inspector.capital.trend_exit.free": 750.0,
        "inspector.capital.x.used": 5.0,
    }
    halted = risk_values(_state(rk.RISK_STATE_HALTED))
    assert halted["inspector.stood_down"] is True and halted["inspector.halted"] is True
    assert risk_values(_state())["inspector.cooldown"] is False


def test_the_tracker_tells_only_changes_and_a_position_gone_as_flat() -> None:
    tracker = FeedbackTracker()
    first = tracker.events(_state(), [_view(("trend_exit", "0.5"), ("trend", "0.5"))])
    assert {e.name for e in first if isinstance(e, ExternalValue)} >= {
        "inspector.stood_down",
        "inspector.halted",
    }
    assert [e for e in first if isinstance(e, PositionValue)] == [
        PositionValue("trend", "sim", SYMBOL, 0.5, 100.5, BASE_NS),
        PositionValue("trend_exit", "sim", SYMBOL, 0.5, 100.5, BASE_NS),
    ]
    assert tracker.events(_state(), [_view(("trend_exit", "0.5"), ("trend", "0.5"))]) == []
    stood = tracker.events(_state(rk.RISK_STATE_STANDING_DOWN), [_view(("trend", "0.5"))])
    assert stood == [
        ExternalValue("inspector.stood_down", True, BASE_NS),
        PositionValue("trend_exit", "sim", SYMBOL, 0.0, None, BASE_NS),
    ]
    assert tracker.events(_state(rk.RISK_STATE_STANDING_DOWN), [_view(("trend", "0.5"))]) == []


def test_a_legacy_position_is_no_strategys() -> None:
    events = FeedbackTracker().events(_state(), [_view(("trend", "1"), legacy=True)])
    assert not any(isinstance(e, PositionValue) for e in events)


def test_the_runner_feeds_what_it_heard_at_its_next_release_and_evaluates_it() -> None:
    market = Market()
    market.prices(*RISING)
    requests = []

    async def emit(evaluation: Evaluation) -> None:
        requests.extend(evaluation.positions)

    async def run() -> None:
        runner = PatchRunner(market.engine, emit, clock=lambda: market.now)
        runner.hear([position(0.5)])
        await runner.release(market.now)
        for price in FALLING:
            market.now += S
            market.engine.feed("sim", trade(market.now, price, trade_id=f"f{price}", symbol=SYMBOL))
            await runner.release(market.now)
            requests.extend(market.engine.evaluate_due(market.now).positions)

    asyncio.run(run())
    assert [r.action for r in requests] == ["close"]


def _config(**fields: object) -> DetectorConfig:
    return DetectorConfig(mesh=MeshConfig(), redis_url="redis://x", database_url="postgresql://x", **fields)  # type: ignore[arg-type]


def test_the_inspector_flag_takes_a_host_and_port_and_the_poll_a_bounded_period() -> None:
    assert _config(inspector="127.0.0.1:8008", feedback_every_ms=200).inspector == "127.0.0.1:8008"
    with pytest.raises(InvalidArgument) as bad:
        _config(inspector="inspector")
    assert bad.value.violations[0].field == "inspector"
    with pytest.raises(InvalidArgument) as fast:
        _config(feedback_every_ms=10)
    assert fast.value.violations[0].field == "feedback-every-ms" and "10" in str(fast.value)


def test_with_no_inspector_to_ask_nothing_is_heard_and_the_poll_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[object] = []
    feedback = InspectorFeedback(None, None, heard.extend)

    async def twice() -> None:
        await feedback.once()
        await feedback.once()
        await feedback.upstream.close()

    with caplog.at_level(logging.INFO, "trademesh.core.detector.feedback_feed"):
        asyncio.run(twice())
    assert heard == []
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "no live instance serves trademesh.risk.v1.Inspector" in said[0]


def test_a_patch_started_after_its_position_was_told_hears_the_latest() -> None:
    """Told values come only when they change: a patch that starts later (warmed from live data)
    gets the latest of each at its start, and so does a source rebuilt by a parameter change."""
    eng = engine()
    strategy = load_strategy(EXAMPLE, Catalog.builtin())
    (patch,) = build_patches(eng, strategy, BASE_NS)
    eng.feed("", position(0.5))
    eng.feed("", position(0.25))  # the latest wins
    eng.feed("", ExternalValue("inspector.stood_down", True, BASE_NS))
    closes = [100.0 + (i % 2) / 10 for i in range(40)]
    eng.warm(patch.id, [("sim", BarValue(SYMBOL, 1, BASE_NS + i * S, 100.0, 100.0, 100.0, c, 1.0, 100.0, 1))
                        for i, c in enumerate(closes)])  # fmt: skip
    patch.activate(BASE_NS + 40 * S)
    eng.probe(patch.id, "position.size", BASE_NS + 40 * S)
    eng.probe(patch.id, "stood_down.value", BASE_NS + 40 * S)
    eng.evaluate_due(BASE_NS + 41 * S)
    told = {u.port: u.value for u in eng.probe_updates(BASE_NS + 42 * S)}
    assert told == {"position.size": 0.25, "stood_down.value": True}
    before = patch.modules["position"]
    patch.set_param("position", "venue", "sim", BASE_NS + 43 * S)
    assert patch.modules["position"] is not before  # rebuilt: a new source, with no value of its own
    eng.evaluate_due(BASE_NS + 44 * S)
    assert {u.port: u.value for u in eng.probe_updates(BASE_NS + 45 * S)}["position.size"] == 0.25
