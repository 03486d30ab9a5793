"""What makes the contract's market data well formed, event by event: each function lists the
problems of one message (empty: none), in lines a reason can quote."""

from __future__ import annotations

from typing import TypeAlias

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.market import decimal_of
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Timeframe", "book_problems", "candle_problems", "funding_problems", "positive", "ticker_problems"]

Timeframe: TypeAlias = common.Timeframe.ValueType


def positive(event_name: str, **fields: str) -> list[str]:
    found = []
    for name, text in fields.items():
        value = decimal_of(text)
        if value is None or value <= 0:
            found.append(f"a {event_name}'s {name} {text!r} is not a positive decimal")
    return found


def book_level_problems(
    kind: str, sequence: int, bids: list[md.BookLevel], asks: list[md.BookLevel]
) -> list[str]:
    found = []
    for side, levels, descending in (("bids", bids, True), ("asks", asks, False)):
        prices = []
        for level in levels:
            price, size = decimal_of(level.price), decimal_of(level.size)
            if price is None or price <= 0 or size is None or size < 0 or (size == 0 and kind == "snapshot"):
                found.append(
                    f"the {kind} at {sequence} holds a level {level.price!r} x {level.size!r} in {side}"
                )
            elif price is not None:
                prices.append(price)
        if kind == "snapshot" and prices != sorted(prices, reverse=descending):
            found.append(f"the snapshot at {sequence} does not list its {side} best first")
    return found


def book_problems(events: list[md.MarketEvent]) -> list[str]:
    """Snapshot first; each delta one past the book before it; a RESYNC notice followed by a snapshot."""
    found: list[str] = []
    sequence: int | None = None  # the book's, once a snapshot came
    awaiting_snapshot = False  # after a RESYNC notice
    for event in events:
        if event.HasField("notice"):
            awaiting_snapshot = awaiting_snapshot or event.notice.kind == md.NOTICE_KIND_RESYNC
        elif event.HasField("book_snapshot"):
            snapshot = event.book_snapshot
            found += book_level_problems(
                "snapshot", snapshot.sequence, list(snapshot.bids), list(snapshot.asks)
            )
            sequence, awaiting_snapshot = snapshot.sequence, False
        elif event.HasField("book_delta"):
            delta = event.book_delta
            found += book_level_problems("delta", delta.sequence, list(delta.bids), list(delta.asks))
            if sequence is None:
                found.append(f"a delta ({delta.sequence}) came before any snapshot")
            elif awaiting_snapshot:
                found.append(
                    f"a delta ({delta.sequence}) came after a RESYNC notice, before the snapshot it announces"
                )
            elif delta.sequence != sequence + 1:
                found.append(
                    f"a delta's sequence {delta.sequence} does not follow the book's {sequence} (a hole)"
                )
            sequence = delta.sequence
    return found


def ticker_problems(ticker: md.Ticker) -> list[str]:
    found = []
    bid, ask = decimal_of(ticker.best_bid), decimal_of(ticker.best_ask)
    for name in (
        "best_bid",
        "best_bid_size",
        "best_ask",
        "best_ask_size",
        "last_price",
        "base_volume_24h",
        "quote_volume_24h",
        "open_24h",
    ):
        text = getattr(ticker, name)
        if text and decimal_of(text) is None:
            found.append(f"a ticker's {name} {text!r} is not a decimal")
    if (ticker.best_bid == "") != (ticker.best_bid_size == "") or (ticker.best_ask == "") != (
        ticker.best_ask_size == ""
    ):
        found.append("a ticker gives a best price without its size, or a size without its price")
    if bid is not None and ask is not None and bid > ask:
        found.append(f"a ticker's best bid {ticker.best_bid} is above its best ask {ticker.best_ask}")
    return found


def candle_problems(candle: md.Candle, timeframe: Timeframe) -> list[str]:
    prices = [decimal_of(t) for t in (candle.open, candle.high, candle.low, candle.close)]
    volume = decimal_of(candle.volume)
    if any(p is None or p <= 0 for p in prices) or volume is None or volume < 0:
        return [
            (
                f"the candle of {candle.open_time_ns} has a price or volume that is not a decimal "
                f"({candle.open}, {candle.high}, {candle.low}, {candle.close}, {candle.volume})"
            )
        ]
    open_, high, low, close = (p for p in prices if p is not None)
    found = []
    if not (high >= max(open_, close, low) and low <= min(open_, close)):
        found.append(
            f"the candle of {candle.open_time_ns}: high {high} and low {low} do not hold its "
            f"open {open_} and close {close}"
        )
    if candle.timeframe != timeframe:
        found.append(
            f"a candle of {common.Timeframe.Name(candle.timeframe)} on a "
            f"{common.Timeframe.Name(timeframe)} subscription"
        )
    if candle.open_time_ns <= 0:
        found.append("a candle without its open time")
    return found


def funding_problems(rate: md.FundingRate) -> list[str]:
    found = []
    if decimal_of(rate.rate) is None:
        found.append(f"a funding rate {rate.rate!r} is not a decimal")
    for name in ("mark_price", "index_price"):
        text = getattr(rate, name)
        if text and decimal_of(text) is None:
            found.append(f"a funding event's {name} {text!r} is not a decimal")
    if rate.next_funding_ns < 0:
        found.append(f"a funding event's next_funding_ns {rate.next_funding_ns} is negative")
    return found
