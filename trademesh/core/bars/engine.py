"""The aggregation engine of one venue's trade stream: pure, no I/O.

Each trade goes into its symbol's open 1s bar (by event time); a 1s bar that closes is
merged into the open bar of every larger timeframe, which closes in turn when the watermark
passes its end. Duplicates (a trade id already in its open 1s bar) are dropped; a trade
whose 1s bar has closed is late: counted, never merged into a published bar, and its time
becomes a repair span (the venue's candles replace the bars it belongs to). Intervals
without trades give no bar.

The engine remembers the last bus entry it applied, so an entry handed to it twice (a
commit whose reply was lost, then redelivered) changes nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bars.spans import RepairTask, Span, add_span
from trademesh.core.bars.timeframes import HIGHER, S1_NS
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.bar import Bar, SecondBar
from trademesh.core.domain.decimals import WIDE
from trademesh.core.domain.model import Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BarsOutput", "Counts", "EntryId", "SymbolBars", "VenueBars", "entry_position"]

EntryId = tuple[int, int]  # a bus entry id, "ms-seq", as numbers
# (timeframe, length, offset): a bar opens at ts - (ts - offset) % length (Timeframe.open_time_ns).
_HIGHER_NS = tuple((timeframe, timeframe.ns, timeframe.offset_ns) for timeframe in HIGHER)
_GAP_CHANNELS = (md.CHANNEL_TRADES, md.CHANNEL_UNSPECIFIED)
_END_OF_TIME = 2**63 - 1
# A plain wire decimal without sign, at most 38 digits (trademesh.core.domain.decimals' rule, checked in one
# regex on the hot path): sums and products of them stay exact under WIDE.
_POSITIVE = re.compile(r"(?:(?=[0-9]{1,38}\Z)[0-9]+|(?=[0-9.]{3,39}\Z)[0-9]+\.[0-9]+)\Z").match


def entry_position(entry_id: str) -> EntryId:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class Counts:
    trades: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0
    gaps: int = 0


@dataclass
class BarsOutput:
    """What one call produced: the bars it closed, by timeframe, and what it counted."""

    bars: dict[Timeframe, list[bus.Bar]]
    counts: Counts


@dataclass(slots=True)
class SymbolBars:
    max_ts_ns: int = 0
    seconds: dict[int, SecondBar] = field(default_factory=dict)
    # The open bar of each of HIGHER, built from the closed 1s bars.
    partials: list[Bar | None] = field(default_factory=lambda: [None] * len(HIGHER))
    spans: list[Span] = field(default_factory=list)
    # Changed since the last checkpoint.
    dirty: bool = True

    @property
    def open_spans(self) -> bool:
        return any(span.open_end for span in self.spans)


class VenueBars:
    def __init__(self, venue: str, rules: WatermarkRules) -> None:
        self.venue = venue
        self.rules = rules
        self.max_ts_ns = 0
        self.position: EntryId = (0, 0)
        self.symbols: dict[str, SymbolBars] = {}
        # Symbols with an open-ended span: their next trade ends it.
        self._seams: set[str] = set()
        self._out: defaultdict[Timeframe, list[bus.Bar]] = defaultdict(list)
        self._counts = Counts()

    @property
    def fresh(self) -> bool:
        """Nothing applied yet (no checkpoint): a first start, or a checkpoint lost."""
        return self.position == (0, 0)

    # ---- input

    def process(self, entries: Iterable[tuple[str, bus.Envelope]]) -> BarsOutput:
        with localcontext(WIDE):
            for entry_id, envelope in entries:
                position = entry_position(entry_id)
                if position <= self.position:
                    continue  # applied before
                self.position = position
                if envelope.WhichOneof("body") == "market":
                    self._events(envelope.market.events, self.rules.horizon(position[0]))
            self._close_due()
        return self._take()

    def entry_lost(self, entry_id: str) -> BarsOutput:
        """An entry given up unapplied (dead-lettered): its trades may be missing from any symbol's
        bars still open, so each symbol gets a seam from its watermark on, ended by its next trade
        and repaired from the venue's candles (a trade of it behind the watermark would have been
        late: repaired as well)."""
        position = entry_position(entry_id)
        if position > self.position:
            self.position = position
            self._counts.gaps += 1
            for symbol, sym in self.symbols.items():
                since = max(0, self.rules.watermark(sym.max_ts_ns, self.max_ts_ns))
                add_span(sym.spans, Span(since, max(since, sym.max_ts_ns), open_end=True))
                sym.dirty = True
                self._seams.add(symbol)
        return self._take()

    def close_all(self) -> BarsOutput:
        """Close every open bar, as at the end of a finite tape."""
        with localcontext(WIDE):
            for symbol, sym in self.symbols.items():
                self._close_symbol(symbol, sym, _END_OF_TIME)
        return self._take()

    def _events(self, events: Sequence[md.MarketEvent], horizon_ns: int) -> None:
        for event in events:
            kind = event.WhichOneof("payload")
            if kind == "trade":
                self._trade(event, horizon_ns)
            elif kind == "notice":
                self._notice(event)

    def _trade(self, event: md.MarketEvent, horizon_ns: int) -> None:
        ts, trade, symbol = event.ts_event_ns, event.trade, event.symbol
        if not (_POSITIVE(trade.price) and _POSITIVE(trade.size) and 0 < ts <= horizon_ns and symbol):
            self._counts.invalid += 1
            return
        price, size = Decimal(trade.price), Decimal(trade.size)
        if not (price and size):  # zero
            self._counts.invalid += 1
            return
        sym = self.symbols.get(symbol) or self._first_trade(symbol, ts)
        sym.dirty = True
        if ts > sym.max_ts_ns:
            sym.max_ts_ns = ts
            if ts > self.max_ts_ns:
                self.max_ts_ns = ts
        if self._seams and symbol in self._seams:
            self._end_seam(symbol, sym, ts)
        self._add(sym, ts, trade.trade_id, price, size)

    def _add(self, sym: SymbolBars, ts: int, trade_id: str, price: Decimal, size: Decimal) -> None:
        start = ts - ts % S1_NS
        bar = sym.seconds.get(start)
        if bar is not None and trade_id in bar.ids:
            self._counts.duplicates += 1
            return
        if start + S1_NS <= self.rules.watermark(sym.max_ts_ns, self.max_ts_ns):
            self._counts.late += 1
            add_span(sym.spans, Span(ts, ts))
            return
        key = (ts, len(trade_id), trade_id)
        if bar is None:
            sym.seconds[start] = SecondBar.of_trade(start, key, price, size)
        else:
            bar.add(key, price, size)
            if trade_id:  # a trade without an id cannot be told from a copy: it is never one
                bar.ids.add(trade_id)
        self._counts.trades += 1

    def _first_trade(self, symbol: str, ts: int) -> SymbolBars:
        """A symbol never seen: the trades before this one in its bars may be missing (a seam),
        and with a backfill, every bar of the window before it (repaired from the venue's
        candles, when the venue has them)."""
        sym = self.symbols[symbol] = SymbolBars(spans=[Span(max(0, ts - self.rules.backfill_ns), ts)])
        return sym

    def _notice(self, event: md.MarketEvent) -> None:
        notice = event.notice
        if notice.kind != md.NOTICE_KIND_GAP or notice.channel not in _GAP_CHANNELS:
            return
        self._counts.gaps += 1
        for symbol in [event.symbol] if event.symbol else list(self.symbols):
            sym = self.symbols.get(symbol)
            if sym is None:
                sym = self.symbols[symbol] = SymbolBars()
            start = notice.since_ns or sym.max_ts_ns or event.ts_event_ns
            add_span(sym.spans, Span(start, max(start, event.ts_event_ns), open_end=True))
            sym.dirty = True
            self._seams.add(symbol)

    def _end_seam(self, symbol: str, sym: SymbolBars, ts: int) -> None:
        for span in sym.spans:
            if span.open_end:
                span.close_end(ts)
        self._seams.discard(symbol)

    # ---- closing

    def _close_due(self) -> None:
        for symbol, sym in self.symbols.items():
            self._close_symbol(symbol, sym, self.rules.watermark(sym.max_ts_ns, self.max_ts_ns))

    def _close_symbol(self, symbol: str, sym: SymbolBars, watermark: int) -> None:
        if sym.seconds:
            for start in sorted(t for t in sym.seconds if t + S1_NS <= watermark):
                self._close_second(symbol, sym, sym.seconds.pop(start))
        for index, (timeframe, length, _) in enumerate(_HIGHER_NS):
            bar = sym.partials[index]
            if bar is not None and bar.open_time_ns + length <= watermark:
                self._out[timeframe].append(bar.to_wire(self.venue, symbol, timeframe))
                sym.partials[index] = None
                sym.dirty = True

    def _close_second(self, symbol: str, sym: SymbolBars, bar: SecondBar) -> None:
        self._out[Timeframe.S1].append(bar.to_wire(self.venue, symbol, Timeframe.S1))
        sym.dirty = True
        for index, (timeframe, length, offset) in enumerate(_HIGHER_NS):
            start = bar.open_time_ns - (bar.open_time_ns - offset) % length
            current = sym.partials[index]
            if current is not None and current.open_time_ns != start:
                # Its end is at or before this 1s bar's start, so the watermark passed it.
                self._out[timeframe].append(current.to_wire(self.venue, symbol, timeframe))
                current = None
            if current is None:
                sym.partials[index] = bar.regrouped(start)
            else:
                current.merge(bar)

    def _take(self) -> BarsOutput:
        out = BarsOutput(dict(self._out), self._counts)
        self._out, self._counts = defaultdict(list), Counts()
        return out

    # ---- repairs

    def repairs_due(self) -> list[RepairTask]:
        """Repairs of closed bars, not yet done (each once): a span's bars closed already are
        repaired without waiting for those it has in bars still open."""
        found: dict[RepairTask, None] = {}
        for symbol, sym in self.symbols.items():
            if sym.spans:
                watermark = self.rules.watermark(sym.max_ts_ns, self.max_ts_ns)
                for span in sym.spans:
                    found.update(dict.fromkeys(span.due(symbol, watermark)))
        return list(found)

    def repaired(self, task: RepairTask) -> None:
        """Record that the venue's candles replaced the bars of `task`."""
        sym = self.symbols.get(task.symbol)
        if sym is None:
            return
        for span in sym.spans:
            if span.mark_done(task):
                sym.dirty = True
        sym.spans[:] = [span for span in sym.spans if not span.finished]

    # ---- checkpoint support

    def restore_seams(self) -> None:
        """After loading a checkpoint: which symbols wait for the end of a seam."""
        self._seams = {symbol for symbol, sym in self.symbols.items() if sym.open_spans}

    def dirty(self) -> dict[str, SymbolBars]:
        return {symbol: sym for symbol, sym in self.symbols.items() if sym.dirty}

    def mark_clean(self) -> None:
        for sym in self.symbols.values():
            sym.dirty = False
