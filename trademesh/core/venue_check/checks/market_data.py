"""MarketData: one Subscribe of the kit's instrument judged per channel (trademesh.core.venue_check.market),
a subscription's refusals, and GetCandles' paging."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeAlias

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.market import MarketObservation, read_stream
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail, skip
from trademesh.core.venue_check.shapes import (
    book_problems,
    candle_problems,
    funding_problems,
    positive,
    ticker_problems,
)
from trademesh.core.venue_check.wire import field_violations, refusal
from trademesh.marketdata.v1 import marketdata_pb2 as md

_UNKNOWN = "VENUECHECK/NOSUCH"
Timeframe: TypeAlias = common.Timeframe.ValueType
_MINUTE_NS = 60_000_000_000
_SHOWN = 3


def _name(channel: md.Channel.ValueType) -> str:
    return md.Channel.Name(channel).removeprefix("CHANNEL_").lower()


# An event of each channel, in a reason.
_EVENT = {md.CHANNEL_TRADES: "trade", md.CHANNEL_BOOK: "book", md.CHANNEL_CANDLES: "candle",
          md.CHANNEL_TICKERS: "ticker", md.CHANNEL_FUNDING: "funding"}  # fmt: skip


async def _observed(kit: Kit, channel: md.Channel.ValueType) -> MarketObservation:
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
    observation: MarketObservation,
    channel: md.Channel.ValueType,
    problems_of: Callable[[md.MarketEvent], list[str]],
) -> str:
    """Fails on the first problems of the channel's events; the reason of a pass otherwise."""
    events = observation.of(channel)
    name = _EVENT[channel]
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
    problems = book_problems(book)
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
        lambda e: positive("trade", price=e.trade.price, size=e.trade.size),
    )


@check(
    "subscribe.tickers",
    (
        "Subscribe on the tickers channel: best bid and ask (each with its size, the bid "
        "not above the ask), decimals"
    ),
)
async def subscribe_tickers(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_TICKERS)
    return _judge(kit, observation, md.CHANNEL_TICKERS, lambda e: ticker_problems(e.ticker))


@check(
    "subscribe.candles",
    "Subscribe on the candles channel: 1-minute candles (the default timeframe) with consistent OHLC",
)
async def subscribe_candles(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_CANDLES)
    timeframe = common.TIMEFRAME_1_MINUTE

    def problems(event: md.MarketEvent) -> list[str]:
        found = candle_problems(event.candle, timeframe)
        if event.candle.open_time_ns % _MINUTE_NS:
            found.append(f"a 1-minute candle opens at {event.candle.open_time_ns}, not on a minute")
        return found

    return _judge(kit, observation, md.CHANNEL_CANDLES, problems)


@check(
    "subscribe.funding", "Subscribe on the funding channel (perpetuals): decimal rates, mark and index prices"
)
async def subscribe_funding(kit: Kit) -> str:
    observation = await _observed(kit, md.CHANNEL_FUNDING)
    return _judge(kit, observation, md.CHANNEL_FUNDING, lambda e: funding_problems(e.funding_rate))


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
