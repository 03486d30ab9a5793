"""Trades a venue publishes again, dropped before the bus (issue 56, item 13).

A restarted live venue subscribes to the exchange again, and the exchange's subscribe snapshot
(up to 100 trades per product on Coinbase) carries trades the bus already holds. The relay of a
trades stream (trademesh.core.platform.bus.relay.MarketRelay) keeps, per symbol, what it published last
(seeded at start from the stream's last entries, whoever wrote them) and drops a trade whose id
and event time are those of one of the last `KEEP` trades published for that symbol: the same
trade sent again (an exchange's snapshot carries each trade's own id and time).

Ids alone are not enough, nor comparing them as numbers ("at or below the highest published"):
trade ids are the venue's strings, numeric or not (Bybit's and Deribit's are not), and a venue
may number its trades per process (the sim counts from 1 again after a restart, at times its
clock says are no later than its predecessor's last trades: tests/integration/test_bus_direct.py
lost a restarted sim's trades to that rule). The id and the time together name one trade
whatever the venue's numbering; a snapshot is far shorter than `KEEP` (Coinbase: 100).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from trademesh.bus.v1 import bus_pb2 as bus

__all__ = ["KEEP", "PublishedTrades"]

# Ids kept per symbol: more than a snapshot holds (Coinbase: 100; Binance: none; Kraken: 50).
KEEP = 1000


@dataclass
class _Symbol:
    """A symbol's last KEEP trades published, as (id, event time): oldest first, and as a set."""

    order: collections.deque[tuple[str, int]] = field(default_factory=collections.deque)
    seen: set[tuple[str, int]] = field(default_factory=set)

    def repeats(self, trade_id: str, ts_ns: int) -> bool:
        return bool(trade_id) and (trade_id, ts_ns) in self.seen

    def add(self, trade_id: str, ts_ns: int) -> None:
        key = (trade_id, ts_ns)
        if not trade_id or key in self.seen:
            return
        self.seen.add(key)
        self.order.append(key)
        if len(self.order) > KEEP:
            self.seen.discard(self.order.popleft())


class PublishedTrades:
    """Per symbol, the trades published last; `without_repeats` drops a batch's repeats."""

    def __init__(self) -> None:
        self._symbols: dict[str, _Symbol] = collections.defaultdict(_Symbol)
        self.dropped = 0

    def note(self, batch: bus.MarketEvents) -> None:
        """Trades the bus holds already (read back at start, oldest first)."""
        for event in batch.events:
            if event.HasField("trade"):
                self._symbols[event.symbol].add(event.trade.trade_id, event.ts_event_ns)

    def without_repeats(self, raw: bytes) -> bytes | None:
        """`raw` (an encoded MarketEvents) without the trades published already: as it is when
        none is, None when nothing is left."""
        batch = bus.MarketEvents.FromString(raw)
        kept = []
        for event in batch.events:
            if event.HasField("trade"):
                symbol = self._symbols[event.symbol]
                if symbol.repeats(event.trade.trade_id, event.ts_event_ns):
                    continue
                symbol.add(event.trade.trade_id, event.ts_event_ns)
            kept.append(event)
        dropped = len(batch.events) - len(kept)
        if not dropped:
            return raw
        self.dropped += dropped
        if not kept:
            return None
        del batch.events[:]
        batch.events.extend(kept)
        return batch.SerializeToString()
