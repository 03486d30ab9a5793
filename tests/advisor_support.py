"""Builders for the advisor's tests: an instrument, bars, a book, a signal and its context."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

from trademesh.core.advisor.engine.calibration import Calibration, calibrate
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.context import BookTop, Context
from trademesh.core.advisor.engine.conviction import combine
from trademesh.core.advisor.engine.evaluation import evaluate
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.engine.quality import assess_quality
from trademesh.core.advisor.engine.regime import read_regime
from trademesh.core.advisor.engine.request import StageOutputs
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.domain.contracts.signal import Direction, RuleAttribution, Signal, direction_sign
from trademesh.core.domain.model import Balance, Candle, Instrument, InstrumentKind, Timeframe

D = Decimal
NOW_NS = 1_767_300_000_000_000_000
MS = 1_000_000
MINUTE_NS = 60_000_000_000
# A backtest's advisor settings where the chain's mechanics on a walk's 1s bars are tested.
FEE_FREE = Path(__file__).with_name("advisor-fee-free.toml")

# A venue that charges no fees, so the tests of other checks see their own figures; the fees'
# tests give their own rates (test_advisor_validation_sizing.py).
INSTRUMENT = Instrument(
    venue="sim", symbol="BTC/USDT", native_symbol="BTCUSDT", kind=InstrumentKind.SPOT, base_asset="BTC",
    quote_asset="USDT", settle_asset="USDT", tick_size=D("0.01"), lot_size=D("0.001"), min_size=D("0.001"),
    min_notional=D("5"), maker_fee_rate=D(0), taker_fee_rate=D(0),
)  # fmt: skip


def candle(i: int, o: str, h: str, low: str, c: str, volume: str = "10") -> Candle:
    start = NOW_NS - (200 - i) * MINUTE_NS
    return Candle(Timeframe.M1, start, D(o), D(h), D(low), D(c), D(volume), D(0), 0, True)


def trend_bars(n: int, start: str = "100", step: str = "0.05", wick: str = "0.2") -> tuple[Candle, ...]:
    """n bars, each opening at the last close and closing `step` higher, with `wick` either side."""
    bars, price = [], D(start)
    for i in range(n):
        close = price + D(step)
        high = max(price, close) + D(wick)
        low = min(price, close) - D(wick)
        bars.append(candle(i, str(price), str(high), str(low), str(close), str(10 + i % 3)))
        price = close
    return tuple(bars)


def book(bid: str = "101.99", ask: str = "102.01", size: str = "100") -> BookTop:
    return BookTop(D(bid), D(size), D(ask), D(size), NOW_NS - 100 * MS)


def signal(direction: Direction = Direction.LONG, conviction: str = "0.8", **changes: Any) -> Signal:
    base = Signal(
        signal_id="sig-1", venue="sim", symbol="BTC/USDT", direction=direction, conviction=D(conviction),
        score=D("2.4"), threshold=D("2"), strategy_id="momentum", patch_version=3,
        rules=(
            RuleAttribution("rsi_low", D("1.2"), "28.5", True),
            RuleAttribution("ema_up", D("1.2"), "true", True),
        ),
        ts_event_ns=NOW_NS - 200 * MS, ts_ns=NOW_NS - 150 * MS,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def context(bars: tuple[Candle, ...] | None = None, **changes: Any) -> Context:
    bars = trend_bars(40) if bars is None else bars
    base = Context(
        venue="sim", symbol="BTC/USDT", gathered_ns=NOW_NS - 10 * MS, instrument=INSTRUMENT,
        price=bars[-1].close if bars else D("100"), book=book(), bars=bars, positions=(),
        balances=(Balance("USDT", D("100000")), Balance("BTC", D("1"))), open_orders=(), recent_signals=(),
        last_event_ns=NOW_NS - 100 * MS,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def stage_outputs(
    sig: Signal | None = None,
    ctx: Context | None = None,
    model: ModelArtifact | None = None,
    calibration: Calibration | None = None,
    config: AdvisorConfig | None = None,
) -> StageOutputs:
    """Stages 1-5 run on their own, as the core runs them."""
    sig = signal() if sig is None else sig
    cfg = AdvisorConfig() if config is None else config
    ctx = context() if ctx is None else ctx
    snap = snapshot(sig, ctx, NOW_NS)
    quality = assess_quality(snap, cfg.quality)
    ev = evaluate(snap, direction_sign(sig.direction), model, cfg.rules)
    conviction = combine(float(sig.conviction), ev, cfg.conviction)
    regime = read_regime(ctx.bars, cfg.regime)
    cal = calibrate(
        Calibration.identity() if calibration is None else calibration, regime.label, conviction.raw
    )
    return StageOutputs(sig, snap, quality, ev, conviction, regime, cal)
