"""The account as of a signal's event time: the venue's balances and positions as last read,
less the fills made since that time (or with those made up to it, when the signal is the
younger), so a decision sizes on the equity a backtest's replayed account had then.

- RecentFills reads the followed venues' executions from the bus (`exec.{<venue>}`, as ingest
  writes them; read from the stream's end when the venue is followed, no consumer group,
  nothing acknowledged) and keeps each venue's fills of the last `keep_ns` by the fill's venue
  time. They are complete from the moment the venue is followed; a gap marker on the stream
  (executions may be missing) makes them complete again only from then on.
- moved() is the account with fills' effects added or taken off: each fill moves its symbol's
  position by its signed size and, on a spot market, the base asset by that and the quote
  asset by size x price the other way; its fee comes off the fee's asset. A derivative's
  margin and realised PnL are not moved (the fee is): the venue's balances of a derivative
  account are as read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Balance, Instrument, InstrumentKind, Position
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import executions_stream
from trademesh.core.platform.bus.reads import read_after, read_back
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import TrademeshError
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["FillEffect", "RecentFills", "moved", "parse_fill"]

log = logging.getLogger(__name__)

_READ = 500
_BLOCK_MS = 200
_MARGIN_NS = 2_000_000_000  # kept beyond keep_ns: the balances' read is up to a second old


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class FillEffect:
    """A fill as the account as of a time needs it, parsed once when read off the bus."""

    ts_ns: int  # the venue's time
    symbol: str
    size: Decimal  # signed: + bought, - sold
    quote: Decimal  # size x price, signed as size
    fee: Decimal
    fee_asset: str


def parse_fill(fill: tf.Fill, ts_ns: int) -> FillEffect:
    size = Decimal(fill.size)
    if fill.side != common.SIDE_BUY:
        size = -size
    fee = Decimal(fill.fee) if fill.fee and fill.fee_asset else Decimal(0)
    return FillEffect(
        fill.ts_event_ns or ts_ns, fill.symbol, size, size * Decimal(fill.price), fee, fill.fee_asset
    )


class _Venue:
    __slots__ = ("complete_ns", "fills")

    def __init__(self, complete_ns: int) -> None:
        self.complete_ns = complete_ns  # the fills are all there from this time on
        self.fills: deque[FillEffect] = deque()


class RecentFills:
    def __init__(self, redis: BusRedis, keep_ns: int, clock: Callable[[], int]) -> None:
        self.redis = redis
        self.keep_ns = keep_ns
        self._clock = clock
        self._venues: dict[str, _Venue] = {}
        self._cursors: dict[str, str] = {}  # stream -> the last entry id read
        self._streams: dict[str, str] = {}  # stream -> venue
        self._new: set[str] = set()  # venues followed, their stream's end not read yet

    def follow(self, venue: str) -> None:
        if venue not in self._venues and venue not in self._new:
            self._new.add(venue)

    def unfollow(self, venue: str) -> None:
        self._new.discard(venue)
        self._venues.pop(venue, None)
        stream = executions_stream(venue)
        self._cursors.pop(stream, None)
        self._streams.pop(stream, None)

    def between(self, venue: str, after_ns: int, until_ns: int) -> list[FillEffect] | None:
        """The venue's fills with after_ns < time <= until_ns; None when they are not all known."""
        kept = self._venues.get(venue)
        if kept is None or after_ns < kept.complete_ns:
            return None
        return [f for f in kept.fills if after_ns < f.ts_ns <= until_ns]

    async def run(self, stop: asyncio.Event) -> None:
        """Read the followed venues' executions until `stop`; Redis away is waited out."""
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            try:
                await self._start_new()
                if not self._cursors:
                    await asyncio.sleep(_BLOCK_MS / 1000)
                    continue
                await self._read()
                backoff.reset()
            except (RedisError, OSError) as exc:
                delay = backoff.next()
                log.warning("advisor context: reading executions: %s; again in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _start_new(self) -> None:
        for venue in sorted(self._new):
            stream = executions_stream(venue)
            last = await read_back(self.redis, stream, count=1)
            self._cursors[stream] = _text(last[0][0]) if last else "0-0"
            self._streams[stream] = venue
            self._venues[venue] = _Venue(self._clock())
            self._new.discard(venue)

    async def _read(self) -> None:
        answer = await read_after(self.redis, dict(self._cursors), count=_READ, block=_BLOCK_MS)
        for stream, entries in answer or ():
            name = _text(stream)
            venue = self._streams.get(name)
            if venue is None:
                continue  # unfollowed meanwhile
            for entry_id, fields in entries:
                self._cursors[name] = _text(entry_id)
                self._entry(venue, fields)

    def _entry(self, venue: str, fields: dict[bytes, bytes]) -> None:
        kept = self._venues.get(venue)
        if kept is None:
            return
        try:
            batch = decode(fields).executions
        except TrademeshError:
            return  # not ours to judge: the stream's writer logs its own
        if batch.gap:
            kept.fills.clear()
            kept.complete_ns = self._clock()
        for execution in batch.executions:
            if execution.HasField("fill"):
                kept.fills.append(parse_fill(execution.fill, execution.ts_event_ns))
        oldest = self._clock() - self.keep_ns - _MARGIN_NS
        while kept.fills and kept.fills[0].ts_ns < oldest:
            kept.fills.popleft()


def moved(
    balances: tuple[Balance, ...],
    positions: dict[str, tuple[Position, ...]],
    fills: Sequence[FillEffect],
    sign: int,
    instrument: Callable[[str], Instrument | None],
) -> tuple[tuple[Balance, ...], dict[str, tuple[Position, ...]]]:
    """The account with the fills' effects added (`sign` 1) or taken off (-1)."""
    if not fills:
        return balances, positions
    zero = Decimal(0)
    assets: dict[str, Decimal] = {}
    sizes: dict[str, Decimal] = {}
    for fill in fills:
        sizes[fill.symbol] = sizes.get(fill.symbol, zero) + fill.size
        found = instrument(fill.symbol)
        if found is not None and found.kind is InstrumentKind.SPOT:
            assets[found.base_asset] = assets.get(found.base_asset, zero) + fill.size
            assets[found.quote_asset] = assets.get(found.quote_asset, zero) - fill.quote
        if fill.fee:
            assets[fill.fee_asset] = assets.get(fill.fee_asset, zero) - fill.fee
    return _balances(balances, assets, sign), _positions(positions, sizes, sign)


def _balances(balances: tuple[Balance, ...], change: dict[str, Decimal], sign: int) -> tuple[Balance, ...]:
    found = [Balance(b.asset, b.free + sign * change.pop(b.asset, Decimal(0)), b.locked) for b in balances]
    found += [Balance(asset, sign * amount) for asset, amount in sorted(change.items()) if amount]
    return tuple(found)


def _positions(
    positions: dict[str, tuple[Position, ...]], change: dict[str, Decimal], sign: int
) -> dict[str, tuple[Position, ...]]:
    found = dict(positions)
    for symbol, size in change.items():
        held = found.get(symbol, ())
        if held:
            first = held[0]
            size = first.size + sign * size
            found[symbol] = (Position(first.symbol, size, first.entry_price, first.realized_pnl), *held[1:])
        elif size:
            found[symbol] = (Position(symbol, sign * size, None),)
    return found
