"""MarketData: one Subscribe of the kit's instrument judged per channel (core.venue_check.market),
a subscription's refusals, and GetCandles' paging."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TypeAlias

import grpc

from core.venue_check.kit import Kit
from core.venue_check.market import Observation, decimal_of, read_stream
from core.venue_check.registry import check
from core.venue_check.results import fail, skip
from core.venue_check.wire import describe, field_violations, refusal
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

_UNKNOWN = "VENUECHECK/NOSUCH"
Timeframe: TypeAlias = common.Timeframe.ValueType
_MINUTE_NS = 60_000_000_000
_SHOWN = 3


def _name(channel: md.Channel.ValueType) -> str:
    return md.Channel.Name(channel).removeprefix("CHANNEL_").lower()


async def _observed(kit: Kit, channel: md.Channel.ValueType) -> Observation:
    """The kit's observation of the channel; a skip when GetStatus lists no such stream."""
    if channel not in kit.streamed_channels(kit.symbol):
        skip(f"GetStatus lists no {_name(channel)} stream of {kit.symbol}")
    return await kit.observation()


def _events_problems(kit: Kit, events: list[md.MarketEvent]) -> list[str]:
    found = []
    for event in events:
        if event.symbol != kit.symbol or event.venue != kit.venue:
            found.append(
                f"an event of {event.venue!r} {event.symbol!r} on a subscription of {kit.venue} {kit.symbol}"
            )
        if event.ts_event_ns <= 0 or event.ts_recv_ns <= 0:
            found.append(
                f"an event without its times (ts_event_ns {event.ts_event_ns}, ts_recv_ns {event.ts_recv_ns})"
            )
    return found


def _judge(
    kit: Kit,
    observation: Observation,
    channel: md.Channel.ValueType,
    problems_of: Callable[[md.MarketEvent], list[str]],
) -> str:
    """Fails on the first problems of the channel's events; the reason of a pass otherwise."""
    events = observation.of(channel)
    name = _name(channel)
    if not events:
        counted = observation.counted(channel)
        if counted > 0:
            fail(
                f"GetStatus counted {counted} {name} events of {kit.symbol} during the read; the "
                "subscriber got none"
            )
        why = f" ({observation.ended})" if observation.ended else ""
        return (
            f"no {name} event of {kit.symbol} in {observation.read_s:.1f} s, none counted by "
            f"GetStatus either{why}"
        )
    problems = _events_problems(kit, events) + [p for e in events for p in problems_of(e)]
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        fail(f"{name}: " + "; ".join(problems[:_SHOWN]) + more)
    return f"{len(events)} {name} events of {kit.symbol} well formed"


def _positive(event_name: str, **fields: str) -> list[str]:
    found = []
    for name, text in fields.items():
        value = decimal_of(text)
        if value is None or value <= 0:
            found.append(f"a {event_name}'s {name} {text!r} is not a positive decimal")
    return found


def _book_levels(kind: str, sequence: int, bids: list[md.BookLevel], asks: list[md.BookLevel]) -> list[str]:
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


def _book_problems(events: list[md.MarketEvent]) -> list[str]:
    """Snapshot first; each delta one past the book before it; a RESYNC notice followed by a snapshot."""
    found: list[str] = []
    sequence: int | None = None  # the book's, once a snapshot came
    awaiting_snapshot = False  # after a RESYNC notice
    for event in events:
        if event.HasField("notice"):
            awaiting_snapshot = awaiting_snapshot or event.notice.kind == md.NOTICE_KIND_RESYNC
        elif event.HasField("book_snapshot"):
            snapshot = event.book_snapshot
            found += _book_levels("snapshot", snapshot.sequence, list(snapshot.bids), list(snapshot.asks))
            sequence, awaiting_snapshot = snapshot.sequence, False
        elif event.HasField("book_delta"):
            delta = event.book_delta
            found += _book_levels("delta", delta.sequence, list(delta.bids), list(delta.asks))
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


@check(
    "subscribe.book",
    (
        "Subscribe on the book channel: a snapshot first, then deltas whose sequence "
        "numbers follow it without holes; a RESYNC notice is followed by a snapshot"
    ),
)
async def subscribe_book(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_BOOK)
    book = [
        e
        for e in observation.events()
        if e.symbol == kit.symbol
        and (
            e.WhichOneof("payload") in ("book_snapshot", "book_delta")
            or (e.HasField("notice") and e.notice.channel == md.CHANNEL_BOOK)
        )
    ]
    problems = _book_problems(book)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        fail("book: " + "; ".join(problems[:_SHOWN]) + more)
    reason = _judge(kit, observation, md.CHANNEL_BOOK, lambda e: [])
    deltas = sum(e.HasField("book_delta") for e in book)
    snapshots = sum(e.HasField("book_snapshot") for e in book)
    return f"{reason}: {snapshots} snapshot(s), {deltas} deltas in sequence" if snapshots else reason


@check(
    "subscribe.trades", "Subscribe on the trades channel: trades of the symbol with positive price and size"
)
async def subscribe_trades(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_TRADES)
    return _judge(
        kit,
        observation,
        md.CHANNEL_TRADES,
        lambda e: _positive("trade", price=e.trade.price, size=e.trade.size),
    )


def _ticker_problems(ticker: md.Ticker) -> list[str]:
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


@check(
    "subscribe.tickers",
    (
        "Subscribe on the tickers channel: best bid and ask (each with its size, the bid "
        "not above the ask), decimals"
    ),
)
async def subscribe_tickers(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_TICKERS)
    return _judge(kit, observation, md.CHANNEL_TICKERS, lambda e: _ticker_problems(e.ticker))


def _candle_problems(candle: md.Candle, timeframe: Timeframe) -> list[str]:
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


@check(
    "subscribe.candles",
    "Subscribe on the candles channel: 1-minute candles (the default timeframe) with consistent OHLC",
)
async def subscribe_candles(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_CANDLES)
    timeframe = common.TIMEFRAME_1_MINUTE

    def problems(event: md.MarketEvent) -> list[str]:
        found = _candle_problems(event.candle, timeframe)
        if event.candle.open_time_ns % _MINUTE_NS:
            found.append(f"a 1-minute candle opens at {event.candle.open_time_ns}, not on a minute")
        return found

    return _judge(kit, observation, md.CHANNEL_CANDLES, problems)


def _funding_problems(rate: md.FundingRate) -> list[str]:
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


@check(
    "subscribe.funding", "Subscribe on the funding channel (perpetuals): decimal rates, mark and index prices"
)
async def subscribe_funding(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_FUNDING)
    return _judge(kit, observation, md.CHANNEL_FUNDING, lambda e: _funding_problems(e.funding_rate))


def _notices_only(message: md.SubscribeResponse) -> bool:
    return all(e.HasField("notice") for e in message.events)


@check(
    "subscribe.positions",
    (
        "every Subscribe message carries its epoch and a position greater than the one "
        "before (a message of notices only may carry none)"
    ),
)
async def subscribe_positions(kit: Kit) -> str:
    observation = await kit.observation()
    if observation.ended:
        fail(
            f"the subscription of {kit.symbol} on "
            f"{', '.join(map(_name, observation.request.channels))}: {observation.ended}"
        )
    numbered = [m for m in observation.messages if not (_notices_only(m) and m.position == 0)]
    epochs = {m.epoch for m in numbered}
    if 0 in epochs or len(epochs) > 1:
        fail(f"the stream's messages carry the epochs {sorted(epochs)}: one epoch, not 0, is the contract")
    positions = [m.position for m in numbered]
    for before, after in itertools.pairwise(positions):
        if after <= before:
            fail(f"a message's position {after} follows {before}: positions only grow")
    if not numbered:
        return f"no message in {observation.read_s:.1f} s (a quiet market)"
    return (
        f"{len(numbered)} messages of epoch {positions and numbered[0].epoch}, positions "
        f"{positions[0]}..{positions[-1]} growing"
    )


@check(
    "subscribe.refused",
    (
        "Subscribe: an unknown symbol beside a known one is refused alone (a REFUSED "
        "notice), one alone is INVALID_ARGUMENT, as is no channel"
    ),
)
async def subscribe_refused(kit: Kit) -> str:
    channels = kit.streamed_channels(kit.symbol)
    if not channels:
        fail(f"GetStatus lists no stream of {kit.symbol} to subscribe to")
    channel = md.CHANNEL_BOOK if md.CHANNEL_BOOK in channels else channels[0]
    request = md.SubscribeRequest(symbols=[kit.symbol, _UNKNOWN], channels=[channel])

    def refused(message: md.SubscribeResponse) -> bool:
        return any(
            e.HasField("notice") and e.notice.kind == md.NOTICE_KIND_REFUSED and e.symbol == _UNKNOWN
            for e in message.events
        )

    messages, ended = await read_stream(kit, request, refused, window_s=5.0)
    if not any(refused(m) for m in messages):
        fail(
            f"Subscribe of [{kit.symbol}, {_UNKNOWN}] sent no REFUSED notice for {_UNKNOWN}"
            + (f" ({ended})" if ended else "")
        )
    if ended:
        fail(f"Subscribe of [{kit.symbol}, {_UNKNOWN}]: {ended}, though {kit.symbol} is served")
    await _refused_whole(
        kit,
        md.SubscribeRequest(symbols=[_UNKNOWN], channels=[channel]),
        "symbols",
        f"Subscribe of [{_UNKNOWN}]",
    )
    await _refused_whole(
        kit, md.SubscribeRequest(symbols=[kit.symbol]), "channels", "Subscribe without a channel"
    )
    return (
        f"{_UNKNOWN} refused alone with a REFUSED notice; refused whole (INVALID_ARGUMENT) "
        "alone, as is no channel"
    )


async def _refused_whole(kit: Kit, request: md.SubscribeRequest, field: str, what: str) -> None:
    call = kit.mesh.md.Subscribe(request, timeout=kit.options.call_timeout_s)
    try:
        error = await refusal(what, call.read(), grpc.StatusCode.INVALID_ARGUMENT)
    finally:
        call.cancel()
    if not any(f.startswith(field) for f, _ in field_violations(error)):
        fail(f"{what} was refused without a field violation on {field}")


async def _candles(
    kit: Kit, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
) -> list[md.Candle] | None:
    """The candles, or None when the venue refuses the timeframe (INVALID_ARGUMENT, FAILED_PRECONDITION)."""
    request = md.GetCandlesRequest(
        symbol=kit.symbol, timeframe=timeframe, start_ns=start_ns, end_ns=end_ns, limit=limit
    )
    try:
        return list((await kit.mesh.md.GetCandles(request)).candles)
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        fail(f"GetCandles of {kit.symbol} {common.Timeframe.Name(timeframe)} answered {describe(error)}")


def _range_problems(
    candles: list[md.Candle], timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
) -> list[str]:
    found = []
    times = [c.open_time_ns for c in candles]
    if times != sorted(set(times)):
        found.append("candles not oldest first, each once")
    if any(not start_ns <= t < end_ns for t in times):
        found.append(f"a candle outside [{start_ns}, {end_ns})")
    if len(candles) > (limit or 1000):
        found.append(f"{len(candles)} candles for a limit of {limit or 'the default 1000'}")
    found += [p for c in candles for p in _candle_problems(c, timeframe)]
    return found


@check(
    "candles.requests",
    "GetCandles refuses a bad request with INVALID_ARGUMENT naming the field: an end before the start, "
    "an unknown symbol, no timeframe",
)
async def candles_requests(kit: Kit) -> str:
    earlier, later = _MINUTE_NS, 2 * _MINUTE_NS
    minute = common.TIMEFRAME_1_MINUTE
    cases = [
        (md.GetCandlesRequest(symbol=kit.symbol, timeframe=minute, start_ns=later, end_ns=earlier),
         ("start_ns", "end_ns"), "with end_ns before start_ns"),
        (md.GetCandlesRequest(symbol=_UNKNOWN, timeframe=minute), ("symbol",), f"of {_UNKNOWN}"),
        (md.GetCandlesRequest(symbol=kit.symbol), ("timeframe",), "without a timeframe"),
    ]  # fmt: skip
    for request, fields, what in cases:
        error = await refusal(
            f"GetCandles {what}", kit.mesh.md.GetCandles(request), grpc.StatusCode.INVALID_ARGUMENT
        )
        if not any(f in fields for f, _ in field_violations(error)):
            fail(f"GetCandles {what} was refused without a field violation on {' or '.join(fields)}")
    return f"{len(cases)} bad requests refused, each naming its field"


@check(
    "candles.paging",
    "GetCandles: oldest first within [start, end), at most limit; the next page starts after the last "
    "candle, nothing skipped or repeated",
)
async def candles_paging(kit: Kit) -> str:
    end_ns = time.time_ns()
    chosen, full = common.TIMEFRAME_1_MINUTE, await _candles(kit, common.TIMEFRAME_1_MINUTE, 0, end_ns, 0)
    if full is None or len(full) < 4:
        seconds = await _candles(kit, common.TIMEFRAME_1_SECOND, 0, end_ns, 0)
        if seconds is not None and len(seconds) > len(full or []):
            chosen, full = common.TIMEFRAME_1_SECOND, seconds
    if full is None:
        fail(f"GetCandles of {kit.symbol} refused both 1-minute and 1-second candles")
    name = common.Timeframe.Name(chosen).removeprefix("TIMEFRAME_").lower()
    problems = _range_problems(full, chosen, 0, end_ns, 0)
    if problems:
        fail(f"GetCandles {name}: " + "; ".join(problems[:_SHOWN]))
    if len(full) < 4:
        return f"{len(full)} {name} candles of {kit.symbol} held, in order: too few to page"
    first = await _candles(kit, chosen, 0, end_ns, 2) or []
    second = await _candles(kit, chosen, first[-1].open_time_ns + 1 if first else 0, end_ns, 2) or []
    pages = [c.open_time_ns for c in first + second]
    expected = [c.open_time_ns for c in full[:4]]
    if pages != expected:
        fail(f"GetCandles {name} in pages of 2 gave open times {pages}; the whole range begins {expected}")
    return f"{len(full)} {name} candles in order; two pages of 2 follow on, nothing skipped or repeated"
