"""The Screener's values to and from the wire: bus bars, tickers and funding rates in, screens and
results out (pure)."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.convert import TIMEFRAME_TO_PB, candle_of, finite_decimal
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.evaluate import Ranked, ScreenResult
from trademesh.core.screener.engine.inputs import Funding, Ticker
from trademesh.core.screener.engine.metrics import METRICS
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.screener.v1 import screener_pb2 as sc

__all__ = ["candle_of", "funding_of", "metric_text", "result_to_pb", "screen_to_pb", "ticker_of"]


def _optional(name: str, text: str) -> Decimal | None:
    return None if text == "" else finite_decimal(name, text)


def ticker_of(event: md.MarketEvent) -> Ticker:
    """The engine's Ticker of a market event's ticker, with the 24h volumes the venue states."""
    t = event.ticker
    return Ticker(
        ts_ns=event.ts_event_ns,
        bid=_optional("best_bid", t.best_bid),
        ask=_optional("best_ask", t.best_ask),
        last=_optional("last_price", t.last_price),
        bid_size=_optional("best_bid_size", t.best_bid_size),
        ask_size=_optional("best_ask_size", t.best_ask_size),
        volume_24h=_optional("quote_volume_24h", t.quote_volume_24h),
        base_volume_24h=_optional("base_volume_24h", t.base_volume_24h),
    )


def funding_of(event: md.MarketEvent) -> Funding:
    """The engine's Funding of a market event's funding rate (the rate the venue states now)."""
    return Funding(rate=finite_decimal("rate", event.funding_rate.rate), ts_ns=event.ts_event_ns)


def metric_text(value: float) -> str:
    """A metric as a decimal string: the float's shortest round-trip digits, never an exponent
    of Python's float spelling ("1e-05" reads "0.00001")."""
    return format(Decimal(repr(value)), "f")


def screen_to_pb(screen: Screen) -> sc.ScreenDefinition:
    universe = screen.universe
    return sc.ScreenDefinition(
        name=screen.name,
        description=screen.description,
        venue=screen.venue,
        cadence_s=screen.cadence_s,
        top=screen.top,
        max_age_s=screen.max_age_s,
        min_hold_s=screen.hold_ns // 1_000_000_000,
        show=list(screen.show),
        filters=[str(f) for f in screen.filters],
        universe=sc.Universe(
            quote_assets=list(universe.quote_assets),
            kinds=[kind.value for kind in universe.kinds],
            symbols=list(universe.symbols),
            exclude=list(universe.exclude),
        ),
        bars=sc.BarWindows(
            timeframe=TIMEFRAME_TO_PB[screen.bars.timeframe],
            momentum=screen.bars.momentum,
            volatility=screen.bars.volatility,
            volume=screen.bars.volume,
        ),
        score=sc.Score(
            normalise=screen.score.normalise,
            weights=[sc.Weight(metric=m, weight=w) for m, w in screen.score.weights.items()],
        ),
        needed=list(screen.needed),
        source=screen.source,
    )


def _ranked_to_pb(row: Ranked) -> sc.RankedInstrument:
    metrics = [
        sc.MetricValue(metric=m, value=metric_text(row.metrics[m])) for m in METRICS if m in row.metrics
    ]
    return sc.RankedInstrument(rank=row.rank, symbol=row.symbol, score=row.score, metrics=metrics,
                               as_of_ns=row.as_of_ns)  # fmt: skip


def result_to_pb(result: ScreenResult) -> sc.ScreenResult:
    return sc.ScreenResult(
        screen=result.screen,
        venue=result.venue,
        computed_ns=result.computed_ns,
        top_n=result.top_n,
        ranked=[_ranked_to_pb(row) for row in result.ranked],
        universe=result.universe,
        left_out=result.left_out,
        missing=dict(result.missing),
        stale=result.stale,
        filtered_out=result.filtered_out,
        oldest_input_ns=result.oldest_input_ns,
        newest_input_ns=result.newest_input_ns,
        min_hold_s=result.hold_ns // 1_000_000_000,
    )
