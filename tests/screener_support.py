"""Hand-made inputs for the Screener's engine tests and bench: hourly bars closing at a given
time, tickers, instruments."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from trademesh.core.domain.model import Candle, InstrumentKind, Timeframe
from trademesh.core.screener.engine.inputs import Funding, InstrumentInputs, Ticker

HOUR = 3600 * 10**9
NOW = 500_000 * HOUR  # a multiple of every cadence the tests use


def bars(
    closes: Sequence[float | str],
    *,
    end_ns: int = NOW,
    timeframe: Timeframe = Timeframe.H1,
    quote_volume: str = "1000",
) -> list[Candle]:
    """Closed bars with these closes, oldest first, the last closing at `end_ns`."""
    start = end_ns - len(closes) * timeframe.ns
    out = []
    for index, close in enumerate(closes):
        price = Decimal(str(close))
        bar = Candle(timeframe, start + index * timeframe.ns, price, price, price, price, Decimal(1),
                     Decimal(quote_volume), 1, True)  # fmt: skip
        out.append(bar)
    return out


def ticker(
    bid: str | None = "99.99",
    ask: str | None = "100.01",
    *,
    ts_ns: int = NOW,
    volume_24h: str | None = "5000000",
    size: str | None = "10",
) -> Ticker:
    return Ticker(ts_ns, _dec(bid), _dec(ask), _dec(ask), _dec(size), _dec(size), _dec(volume_24h))


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def instrument(
    symbol: str,
    closes: Sequence[float | str] = (),
    *,
    tick: Ticker | None = None,
    funding: str | None = None,
    kind: InstrumentKind = InstrumentKind.PERPETUAL,
    quote: str = "USDT",
    active: bool = True,
    candles: Sequence[Candle] | None = None,
) -> InstrumentInputs:
    return InstrumentInputs(
        symbol=symbol,
        kind=kind,
        quote_asset=quote,
        ticker=tick if tick is not None else ticker(),
        bars=candles if candles is not None else bars(closes),
        funding=None if funding is None else Funding(Decimal(funding), NOW),
        active=active,
    )
