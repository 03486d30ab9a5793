"""One Subscribe of the kit's instrument on every channel the venue streams for it, read once
and kept: what the subscribe checks judge, and where the order checks take the market's prices.

It reads until each channel has shown a few events, the stream has been quiet a while, or the
window ends, and notes GetStatus's event counts before and after, so that a channel that sent the
subscriber nothing can be told from a quiet one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import grpc

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.wire import answer, describe
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["PAYLOADS", "MarketObservation", "decimal_of", "observe", "read_stream", "reference_prices"]

# The payloads of each channel's events.
PAYLOADS: dict[int, tuple[str, ...]] = {
    md.CHANNEL_TRADES: ("trade",),
    md.CHANNEL_BOOK: ("book_snapshot", "book_delta"),
    md.CHANNEL_CANDLES: ("candle",),
    md.CHANNEL_TICKERS: ("ticker",),
    md.CHANNEL_FUNDING: ("funding_rate",),
    md.CHANNEL_MARK: ("mark_price",),
    md.CHANNEL_OPEN_INTEREST: ("open_interest",),
    md.CHANNEL_LIQUIDATIONS: ("liquidation",),
}
WINDOW_S = 4.0  # the longest the kit reads
QUIET_S = 1.0  # a stream silent this long after its first message has said what it had
# Events of a channel that make it seen: two (a candle a second comes slowly), a book's snapshot
# and three deltas.
_ENOUGH = 2
_ENOUGH_BOOK = 4


@dataclass
class MarketObservation:
    request: md.SubscribeRequest
    messages: list[md.SubscribeResponse] = field(default_factory=list)
    # GetStatus's events_total of each asked channel's stream, before and after the read.
    counted_before: dict[int, int] = field(default_factory=dict)
    counted_after: dict[int, int] = field(default_factory=dict)
    # How the stream ended early, when it did ("" when the kit ended it).
    ended: str = ""
    read_s: float = 0.0

    def events(self) -> list[md.MarketEvent]:
        return [e for m in self.messages for e in m.events]

    def of(self, channel: md.Channel.ValueType) -> list[md.MarketEvent]:
        """The channel's market events (not its notices)."""
        kinds = PAYLOADS[channel]
        return [e for e in self.events() if e.WhichOneof("payload") in kinds]

    def notices(self, channel: md.Channel.ValueType) -> list[md.MarketEvent]:
        return [e for e in self.events() if e.HasField("notice") and e.notice.channel == channel]

    def counted(self, channel: int) -> int:
        """The events the venue says its stream had during the read (GetStatus)."""
        return self.counted_after.get(channel, 0) - self.counted_before.get(channel, 0)


def _counts(status: admin.GetStatusResponse, symbol: str) -> dict[int, int]:
    return {s.channel: s.events_total for s in status.streams if s.symbol == symbol}


def _enough(seen: Counter[int], channels: Sequence[int]) -> bool:
    return all(seen[c] >= (_ENOUGH_BOOK if c == md.CHANNEL_BOOK else _ENOUGH) for c in channels)


async def observe(kit: Kit) -> MarketObservation:
    symbol = kit.symbol
    channels = kit.streamed_channels(symbol)
    if not channels:
        fail(f"GetStatus lists no stream of {symbol}: nothing to subscribe to")
    request = md.SubscribeRequest(symbols=[symbol], channels=channels)
    seen = Counter[int]()

    def count(message: md.SubscribeResponse) -> bool:
        for event in message.events:
            kind = event.WhichOneof("payload")
            seen.update(c for c, kinds in PAYLOADS.items() if kind in kinds)
        return _enough(seen, channels)

    before = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    observation = MarketObservation(request, counted_before=_counts(before, symbol))
    started = time.monotonic()
    observation.messages, observation.ended = await read_stream(kit, request, count, WINDOW_S)
    observation.read_s = time.monotonic() - started
    after = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    observation.counted_after = _counts(after, symbol)
    return observation


async def read_stream(
    kit: Kit,
    request: md.SubscribeRequest,
    done: Callable[[md.SubscribeResponse], bool],
    window_s: float,
    quiet_s: float = QUIET_S,
) -> tuple[list[md.SubscribeResponse], str]:
    """The messages of a Subscribe (with the mesh token) until `done(message)` says so, the
    stream is quiet for `quiet_s` after its first message, or `window_s` ends; and how the stream
    ended if it did ("" when the kit ended it)."""
    call = kit.mesh.md.Subscribe(request, timeout=window_s + 10)
    messages: list[md.SubscribeResponse] = []
    deadline = time.monotonic() + window_s
    ended = ""
    try:
        while (left := deadline - time.monotonic()) > 0:
            wait = min(left, quiet_s) if messages else left
            try:
                message = await asyncio.wait_for(call.read(), wait)
            except TimeoutError:
                break
            if message is grpc.aio.EOF:
                ended = "the venue ended the stream"
                break
            assert isinstance(message, md.SubscribeResponse)
            messages.append(message)
            if done(message):
                break
    except grpc.aio.AioRpcError as error:
        ended = f"the stream ended with {describe(error)}"
    finally:
        call.cancel()
    return messages, ended


def decimal_of(text: str) -> Decimal | None:
    """The decimal a field holds; None when empty or not a finite decimal."""
    if text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def reference_prices(observation: MarketObservation) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(best bid, best ask, last price) of the observed market, each None when it showed none:
    the book as built from the observed events, else the latest ticker; the last trade's price,
    else the ticker's last price, else the latest candle's close."""
    bids, asks = _book(observation.of(md.CHANNEL_BOOK))
    bid = max(bids) if bids else None
    ask = min(asks) if asks else None
    tickers = observation.of(md.CHANNEL_TICKERS)
    if tickers and (bid is None or ask is None):
        ticker = tickers[-1].ticker
        bid = bid if bid is not None else decimal_of(ticker.best_bid)
        ask = ask if ask is not None else decimal_of(ticker.best_ask)
    last = None
    trades = observation.of(md.CHANNEL_TRADES)
    if trades:
        last = decimal_of(trades[-1].trade.price)
    elif tickers:
        last = decimal_of(tickers[-1].ticker.last_price)
    candles = observation.of(md.CHANNEL_CANDLES)
    if last is None and candles:
        last = decimal_of(candles[-1].candle.close)
    return _positive(bid), _positive(ask), _positive(last)


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def _book(events: list[md.MarketEvent]) -> tuple[set[Decimal], set[Decimal]]:
    """The prices of the book's levels after the events (a snapshot replaces it)."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for event in events:
        if event.HasField("book_snapshot"):
            bids, asks = {}, {}
            levels = event.book_snapshot
        else:
            levels = event.book_delta  # type: ignore[assignment]
        for side, book in ((levels.bids, bids), (levels.asks, asks)):
            for level in side:
                price, size = decimal_of(level.price), decimal_of(level.size)
                if price is None or size is None:
                    continue
                if size == 0:
                    book.pop(price, None)
                else:
                    book[price] = size
    return set(bids), set(asks)
