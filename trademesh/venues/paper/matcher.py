"""The paper venue's matching: the venue's book and trades, as its connector reports them to the
feed, mirrored into the sim's engine (trademesh.core.domain.matching.mirror), where our orders rest
and trade (docs/paper.md, "The matching model")."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from prometheus_client import Counter

from trademesh.core.domain.book import Level
from trademesh.core.domain.matching.exchange import NullListener, SimExchange
from trademesh.core.domain.matching.mirror import Mirror, QueueRule
from trademesh.core.domain.model import Channel, Execution, Side
from trademesh.core.platform.errors import TrademeshError

__all__ = ["PaperMatcher"]

log = logging.getLogger(__name__)

REFUSED_EVENTS = Counter(
    "trademesh_paper_refused_events_total",
    "Market events the paper venue's engine could not take (off the instrument's tick or lot).",
    ["venue", "symbol"],
)


class _Executions(NullListener):
    """The exchange's listener: our orders' executions go to the runtime; the engine's own trades
    and levels are the venue's market, already on the feed, so they are not published again."""

    def __init__(self) -> None:
        self.publish: Callable[[Execution], None] | None = None

    def on_execution(self, execution: Execution) -> None:
        if self.publish is not None:
            self.publish(execution)


class PaperMatcher:
    """A FeedTap (trademesh.venues.runtime.feed): every trade and book change of the symbols it mirrors
    goes to the engine as it is reported; the stops the trades of one venue message trigger are
    placed once the message is over (the feed's flush)."""

    def __init__(self, exchange: SimExchange, symbols: Sequence[str]) -> None:
        self.exchange = exchange
        self.executions = _Executions()
        exchange.listener = self.executions
        # BACK: a level's decrease comes off its newest orders first, never moving ours forward.
        # Every event straight to the engine (defer False): keeping the levels off its book
        # (trademesh.core.domain.matching.offbook) pays for itself on a backtest's reads, but a live
        # venue's deep books (Kraken's 1,000 levels) made each delta scan them all: 3 times the CPU.
        self.mirrors = {
            symbol: Mirror(exchange, symbol, defer=False, queue=QueueRule.BACK) for symbol in symbols
        }
        self.ready: set[str] = set()  # the symbols whose book came (a snapshot, or a first change)
        self._traded: set[str] = set()
        self.events = 0

    def trade(self, symbol: str, price: str, size: str, taker_side: Side) -> None:
        mirror = self.mirrors.get(symbol)
        if mirror is None:
            return
        self.events += 1
        try:
            if mirror.trade_text(price, size, taker_side):
                self._traded.add(symbol)
        except TrademeshError as exc:
            self._refused(symbol, exc)

    def book(self, symbol: str, bids: Sequence[Level], asks: Sequence[Level], is_snapshot: bool) -> None:
        mirror = self.mirrors.get(symbol)
        if mirror is None:
            return
        self.events += 1
        try:
            if is_snapshot:
                mirror.snapshot_levels(bids, asks)
            else:
                mirror.delta_levels(bids, asks)
        except TrademeshError as exc:
            self._refused(symbol, exc)
            return
        self.ready.add(symbol)

    def gap(self, symbol: str, channel: Channel) -> None:
        # The book keeps its last levels until the venue's next snapshot replaces them all.
        if channel is Channel.BOOK and symbol in self.mirrors:
            log.info("paper book of %s may be stale until the venue's next snapshot", symbol)

    def flushed(self) -> None:
        if self._traded:
            for symbol in self._traded:
                self.exchange.run_stops(symbol)
            self._traded.clear()
        self.exchange.settle_funding()
        self.exchange.check_liquidations()

    def settle(self, symbol: str | None = None) -> None:
        """Before our order or cancel reaches the book, or the book is read: stops released, the
        levels kept off the engine put back."""
        self.flushed()
        for name, mirror in self.mirrors.items():
            if symbol is None or name == symbol:
                mirror.settle()

    def _refused(self, symbol: str, exc: TrademeshError) -> None:
        REFUSED_EVENTS.labels(self.exchange.venue, symbol).inc()
        log.warning("paper venue %s: a %s market event left out: %s", self.exchange.venue, symbol, exc)
