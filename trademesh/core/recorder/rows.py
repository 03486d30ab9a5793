"""Bus entries to row tuples, one list per table, straight from the protobuf objects.

This is the recorder's only per-event Python work, so it stays minimal: attribute reads into
a tuple in staging-column order (trademesh.core.recorder.schema), no decimal parsing (PostgreSQL checks
the decimal strings). What cannot be a row (no payload, an unknown enum) raises Corrupt: the
batch fails and the consumer retries it entry by entry, then dead-letters the bad entry.

The audit trail (signals, requests, decisions, intents, telemetry, executions, the inspector's
journal) keeps every event, whatever text it holds: a NUL or a lone surrogate, which PostgreSQL
cannot store, is stored as U+FFFD (trademesh.core.platform.text.storable; the raw protobuf
body, where the table keeps one, holds the original) instead of dead-lettering the event.
Market data is not scanned (the hot path): a venue's event PostgreSQL refuses is dead-lettered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import TIMEFRAME_FROM_PB
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.errors import Corrupt
from trademesh.core.platform.text import storable
from trademesh.core.recorder.schema import (
    ACCOUNT_STATES,
    ADVISOR_TELEMETRY,
    BARS,
    BOOK,
    CANDLES,
    DECISIONS,
    EXECUTIONS,
    FUNDING,
    FUNDING_RATES,
    INSTRUMENT_CHANGES,
    INTENTS,
    JOURNAL,
    LIQUIDATIONS,
    MARK_PRICES,
    NOTICES,
    OPEN_INTEREST,
    POSITION_REQUESTS,
    REGIME_CHANGES,
    SCREEN_RESULTS,
    SIGNALS,
    SUPERVISOR_AUDIT,
    TICKERS,
    TRADES,
    Table,
)
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Row", "Rows", "chunks", "rows_of"]

Row = tuple[Any, ...]

_SIDES = {common.SIDE_BUY: "buy", common.SIDE_SELL: "sell"}
_TIMEFRAMES = {pb: timeframe.label for pb, timeframe in TIMEFRAME_FROM_PB.items()}
_CHANNELS = {
    md.CHANNEL_TRADES: "trades",
    md.CHANNEL_BOOK: "book",
    md.CHANNEL_CANDLES: "candles",
    md.CHANNEL_TICKERS: "tickers",
    md.CHANNEL_FUNDING: "funding",
    md.CHANNEL_MARK: "mark",
    md.CHANNEL_OPEN_INTEREST: "open_interest",
    md.CHANNEL_LIQUIDATIONS: "liquidations",
}
_NOTICE_KINDS = {md.NOTICE_KIND_GAP: "gap", md.NOTICE_KIND_RESYNC: "resync"}
_DIRECTIONS = {sig.DIRECTION_LONG: "long", sig.DIRECTION_SHORT: "short", sig.DIRECTION_FLAT: "flat"}
_ACTIONS = {
    sig.POSITION_ACTION_OPEN: "open",
    sig.POSITION_ACTION_CLOSE: "close",
    sig.POSITION_ACTION_REDUCE: "reduce",
    sig.POSITION_ACTION_FLIP: "flip",
}
# Every regime but UNSPECIFIED (no change is to or from "no regime").
_REGIMES = {value: _name.removeprefix("REGIME_").lower() for _name, value in ow.Regime.items() if value}


class Rows:
    """The rows of one batch, per table."""

    def __init__(self) -> None:
        self.trades: list[Row] = []
        self.book: list[Row] = []
        self.tickers: list[Row] = []
        self.candles: list[Row] = []
        self.notices: list[Row] = []
        self.bars: list[Row] = []
        self.signals: list[Row] = []
        self.position_requests: list[Row] = []
        self.decisions: list[Row] = []
        self.intents: list[Row] = []
        self.telemetry: list[Row] = []
        self.executions: list[Row] = []
        self.journal: list[Row] = []
        self.funding: list[Row] = []
        self.regimes: list[Row] = []
        self.screens: list[Row] = []
        self.funding_rates: list[Row] = []
        self.supervisor_audit: list[Row] = []
        self.instrument_changes: list[Row] = []
        self.account_states: list[Row] = []
        self.mark_prices: list[Row] = []
        self.open_interest: list[Row] = []
        self.liquidations: list[Row] = []

    def tables(self) -> list[tuple[Table, list[Row]]]:
        """The tables that have rows, with them."""
        pairs = (
            (TRADES, self.trades),
            (BOOK, self.book),
            (TICKERS, self.tickers),
            (CANDLES, self.candles),
            (NOTICES, self.notices),
            (BARS, self.bars),
            (SIGNALS, self.signals),
            (POSITION_REQUESTS, self.position_requests),
            (DECISIONS, self.decisions),
            (INTENTS, self.intents),
            (ADVISOR_TELEMETRY, self.telemetry),
            (EXECUTIONS, self.executions),
            (JOURNAL, self.journal),
            (FUNDING, self.funding),
            (REGIME_CHANGES, self.regimes),
            (SCREEN_RESULTS, self.screens),
            (FUNDING_RATES, self.funding_rates),
            (SUPERVISOR_AUDIT, self.supervisor_audit),
            (INSTRUMENT_CHANGES, self.instrument_changes),
            (ACCOUNT_STATES, self.account_states),
            (MARK_PRICES, self.mark_prices),
            (OPEN_INTEREST, self.open_interest),
            (LIQUIDATIONS, self.liquidations),
        )
        return [(table, rows) for table, rows in pairs if rows]

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self.tables())


def chunks(entries: list[Entry], max_events: int) -> Iterator[list[Entry]]:
    """The entries in runs of about max_events events (an entry is never split)."""
    start, events = 0, 0
    for index, (_, envelope) in enumerate(entries):
        events += len(envelope.market.events) + len(envelope.bars.bars)
        events += len(envelope.signals.signals) + len(envelope.position_requests.requests)
        events += len(envelope.decisions.decisions) + len(envelope.intents.intents)
        events += len(envelope.advisor_telemetry.events) + len(envelope.executions.executions)
        events += len(envelope.journal.entries) + len(envelope.funding.payments)
        events += len(envelope.regimes.changes) + len(envelope.screen_result.ranked)
        events += len(envelope.supervisor_audit.entries) + len(envelope.instruments.changes)
        events += len(envelope.account.balances) + len(envelope.account.positions)
        if events >= max_events:
            yield entries[start : index + 1]
            start, events = index + 1, 0
    if start < len(entries):
        yield entries[start:]


def rows_of(entries: Iterable[Entry]) -> Rows:
    rows = Rows()
    for entry_id, envelope in entries:
        body = envelope.WhichOneof("body")
        if body == "market":
            _add_market(rows, envelope.market.events, entry_id)
        elif body == "bars":
            _add_bars(rows, envelope.bars.bars, envelope.ts_publish_ns)
        elif body == "signals":
            rows.signals.extend(_storable(_signal_row(signal)) for signal in envelope.signals.signals)
        elif body == "position_requests":
            rows.position_requests.extend(
                _storable(_request_row(r)) for r in envelope.position_requests.requests
            )
        elif body == "decisions":
            rows.decisions.extend(_storable(_decision_row(d)) for d in envelope.decisions.decisions)
        elif body == "intents":
            rows.intents.extend(_storable(_intent_row(i)) for i in envelope.intents.intents)
        elif body == "advisor_telemetry":
            rows.telemetry.extend(_storable(_telemetry_row(e)) for e in envelope.advisor_telemetry.events)
        elif body == "executions":
            _add_executions(rows, envelope.executions, envelope.ts_publish_ns, entry_id)
        elif body == "funding":
            rows.funding.extend(_funding_rows(envelope.funding, entry_id))
        elif body == "regimes":
            rows.regimes.extend(_regime_row(c, envelope.ts_publish_ns) for c in envelope.regimes.changes)
        elif body == "screen_result":
            result = envelope.screen_result
            rows.screens.append(_storable(_screen_row(result, envelope.ts_publish_ns, entry_id)))
        elif body == "supervisor_audit":
            audit = envelope.supervisor_audit.entries
            rows.supervisor_audit.extend(
                _storable(_audit_row(e, envelope.ts_publish_ns, entry_id)) for e in audit
            )
        elif body == "instruments":
            rows.instrument_changes.extend(
                _storable(row)
                for row in _instrument_rows(envelope.instruments, envelope.ts_publish_ns, entry_id)
            )
        elif body == "account":
            rows.account_states.extend(_account_rows(envelope.account, envelope.ts_publish_ns, entry_id))
        elif body == "journal":
            rows.journal.extend(_storable(row) for row in _journal_rows(envelope.journal, entry_id))
        else:
            raise Corrupt(f"bus entry {entry_id}: an envelope body the recorder does not know ({body})")
    return rows


def _storable(row: Row) -> Row:
    """The audit row with its text made storable (bytes, the raw bodies, kept as they are)."""
    return tuple(storable(value) if isinstance(value, str) else value for value in row)


def _add_market(rows: Rows, events: Iterable[md.MarketEvent], entry_id: str) -> None:
    # Book deltas and trades, most of the events, are tested first; a trade row is built inline.
    trades, book = rows.trades.append, rows.book.append
    for event in events:
        kind = event.WhichOneof("payload")
        if kind == "book_delta":
            book(_book_row(event, event.book_delta, False))
        elif kind == "trade":
            trade = event.trade
            trades(
                (
                    event.venue,
                    event.symbol,
                    event.ts_event_ns,
                    event.ts_recv_ns,
                    trade.trade_id,
                    trade.price,
                    trade.size,
                    _SIDES.get(trade.taker_side),
                )
            )
        elif kind == "book_snapshot":
            book(_book_row(event, event.book_snapshot, True))
        elif kind == "ticker":
            rows.tickers.append(_ticker_row(event))
        elif kind == "candle":
            rows.candles.append(_candle_row(event))
        elif kind == "notice":
            rows.notices.append(_notice_row(event))
        elif kind == "funding_rate":
            rows.funding_rates.append(_funding_rate_row(event))
        elif kind in _DERIVATIVE_ROWS:
            table, row = _DERIVATIVE_ROWS[kind]
            getattr(rows, table).append(row(event))
        else:
            raise Corrupt(f"bus entry {entry_id}: a {event.venue} {event.symbol} event with no known payload")


def _book_row(event: md.MarketEvent, book: md.BookDelta | md.BookSnapshot, snapshot: bool) -> Row:
    bid_prices, bid_sizes = _side(book.bids, "bid")
    ask_prices, ask_sizes = _side(book.asks, "ask")
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        book.sequence,
        snapshot,
        bid_prices,
        bid_sizes,
        ask_prices,
        ask_sizes,
    )


def _side(levels: Sequence[md.BookLevel], side: str) -> tuple[str, str]:
    """One side's prices and sizes, each space-joined (PostgreSQL splits them again). A value
    holding a space would split into two numbers, so it is refused here."""
    count = len(levels)
    if count == 0:
        return "", ""
    if count == 1:  # a delta mostly changes one level: no lists, no joins
        level = levels[0]
        prices, sizes = level.price, level.size
    else:
        pairs = [(level.price, level.size) for level in levels]
        prices, sizes = " ".join([pair[0] for pair in pairs]), " ".join([pair[1] for pair in pairs])
    if prices.count(" ") != count - 1 or sizes.count(" ") != count - 1:
        raise Corrupt(f"{side} level price or size holds a space: {prices[:60]!r} / {sizes[:60]!r}")
    return prices, sizes


def _ticker_row(event: md.MarketEvent) -> Row:
    ticker = event.ticker
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        ticker.best_bid,
        ticker.best_bid_size,
        ticker.best_ask,
        ticker.best_ask_size,
        ticker.last_price,
        ticker.base_volume_24h,
        ticker.quote_volume_24h,
        ticker.open_24h,
    )


def _funding_rate_row(event: md.MarketEvent) -> Row:
    funding = event.funding_rate
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        funding.rate,
        funding.next_funding_ns or None,
        funding.mark_price,
        funding.index_price,
    )


def _mark_row(event: md.MarketEvent) -> Row:
    mark = event.mark_price
    return (event.venue, event.symbol, event.ts_event_ns, event.ts_recv_ns, mark.mark_price, mark.index_price)


def _open_interest_row(event: md.MarketEvent) -> Row:
    interest = event.open_interest
    return (event.venue, event.symbol, event.ts_event_ns, event.ts_recv_ns, interest.size, interest.value)


def _liquidation_row(event: md.MarketEvent) -> Row:
    liquidation = event.liquidation
    side = _known(_SIDES, liquidation.side, "liquidation side")
    return (event.venue, event.symbol, event.ts_event_ns, event.ts_recv_ns, side, liquidation.price,
            liquidation.size)  # fmt: skip


# The derivatives payloads: (the Rows list they go to, their row).
_DERIVATIVE_ROWS: dict[str, tuple[str, Any]] = {
    "mark_price": ("mark_prices", _mark_row),
    "open_interest": ("open_interest", _open_interest_row),
    "liquidation": ("liquidations", _liquidation_row),
}


def _candle_row(event: md.MarketEvent) -> Row:
    candle = event.candle
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        _known(_TIMEFRAMES, candle.timeframe, "candle timeframe"),
        candle.open_time_ns,
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        candle.quote_volume,
        candle.trade_count,
        candle.closed,
    )


def _notice_row(event: md.MarketEvent) -> Row:
    notice = event.notice
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        _known(_NOTICE_KINDS, notice.kind, "notice kind"),
        _known(_CHANNELS, notice.channel, "notice channel"),
        notice.reason,
        notice.since_ns if notice.since_ns != 0 else None,
    )


def _add_bars(rows: Rows, bars: Iterable[bus.Bar], ts_publish_ns: int) -> None:
    for bar in bars:
        rows.bars.append(
            (
                bar.venue,
                bar.symbol,
                _known(_TIMEFRAMES, bar.timeframe, "bar timeframe"),
                bar.open_time_ns,
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.quote_volume,
                bar.trade_count,
                bar.vwap,
                bar.repaired,
                ts_publish_ns,
            )
        )


def _signal_row(signal: sig.Signal) -> Row:
    return (
        signal.signal_id,
        signal.venue,
        signal.symbol,
        _known(_DIRECTIONS, signal.direction, "signal direction"),
        signal.conviction,
        signal.score,
        signal.threshold,
        signal.strategy_id,
        signal.patch_version,
        _rules_json(signal.rules),
        signal.ts_event_ns,
        signal.ts_signal_ns,
    )


def _rules_json(rules: Iterable[sig.RuleAttribution]) -> str:
    """The rules as a JSON array for the jsonb column; weights stay decimal strings (exact)."""
    return json.dumps(
        [
            {
                "name": storable(r.name),
                "weight": storable(r.weight),
                "value": storable(r.value),
                "fired": r.fired,
            }
            for r in rules
        ],
        separators=(",", ":"),
    )


def _request_row(request: sig.PositionRequest) -> Row:
    # Close and reduce carry no direction: NULL, where an unknown one is still refused.
    direction = None
    if request.direction != sig.DIRECTION_UNSPECIFIED:
        direction = _known(_DIRECTIONS, request.direction, "position request direction")
    return (
        request.request_id,
        request.venue,
        request.symbol,
        _known(_ACTIONS, request.action, "position request action"),
        direction,
        request.fraction,
        request.strategy_id,
        request.patch_version,
        request.ts_event_ns,
        request.ts_request_ns,
    )


def _word(name: str, prefix: str) -> str:
    """STAGE_MARKET_QUALITY -> "market_quality" (an enum value's name as stored)."""
    return name.removeprefix(prefix).lower()


_OUTCOMES = {am.OUTCOME_INTENT: "intent", am.OUTCOME_BLOCKED: "blocked"}
_SOURCES = {am.SYNTHESIS_SOURCE_LLM: "llm", am.SYNTHESIS_SOURCE_DETERMINISTIC: "deterministic",
            am.SYNTHESIS_SOURCE_RECORDED: "recorded"}  # fmt: skip
_ENTRY_TYPES = {tf.ORDER_TYPE_LIMIT: "limit", tf.ORDER_TYPE_MARKET: "market"}


def _stage(value: am.Stage.ValueType) -> str | None:
    if value == am.STAGE_UNSPECIFIED:
        return None
    return _word(am.Stage.Name(value), "STAGE_") if value in am.Stage.values() else str(value)


def _journal_rows(journal: bus.InspectorJournal, entry_id: str) -> Iterator[Row]:
    """An inspector's journal entries (one per stream entry, as trademesh.core.platform.bus.codec reads them),
    keyed by the stream entry's id."""
    ms, dash, seq = entry_id.partition("-")
    if not (dash and ms.isdigit() and seq.isdigit()):
        raise Corrupt(f"journal entry {entry_id!r}: not a stream entry id")
    for entry in journal.entries:
        kind = entry.WhichOneof("input")
        if kind is None:
            raise Corrupt(f"journal entry {entry_id}: no input")
        venue, client_order_id = _journal_names(entry, kind)
        yield (journal.instance, int(ms), int(seq), entry.now_ns, kind, venue, client_order_id,
               entry.SerializeToString())  # fmt: skip


def _journal_names(entry: jr.JournalEntry, kind: str) -> tuple[str, str]:
    """The venue and the client order id a journal entry names ('' for what it does not)."""
    if kind == "fill":
        return entry.fill.venue, entry.fill.fill.client_order_id
    if kind == "order_update":
        return entry.order_update.venue, entry.order_update.client_order_id
    if kind == "query_result":
        return entry.query_result.order.venue, entry.query_result.client_order_id
    if kind == "intent":
        return entry.intent.intent.venue, ""
    if kind == "mark":
        return entry.mark.venue, ""
    if kind == "instruments":
        return entry.instruments.venue, ""
    if kind == "listing":
        return entry.listing.venue, ""
    if kind in ("placement_unknown", "stop_triggered"):
        return "", getattr(entry, kind)
    return "", ""


def _decision_row(d: am.Decision) -> Row:
    conviction = d.conviction
    return (
        d.decision_id,
        d.signal_id,
        d.venue,
        d.symbol,
        d.strategy_id,
        _known(_OUTCOMES, d.outcome, "decision outcome"),
        _stage(d.blocked_stage),
        d.block_reason,
        conviction.raw,
        conviction.calibrated,
        conviction.regime or None,
        _SOURCES.get(d.synthesis.source) if d.HasField("synthesis") else None,
        d.model_version,
        d.hypothetical,
        d.ts_decision_ns,
        d.SerializeToString(),
    )


def _intent_row(i: am.Intent) -> Row:
    return (
        i.intent_id,
        i.decision_id,
        i.signal_id,
        i.venue,
        i.symbol,
        i.strategy_id,
        _known(_SIDES, i.side, "intent side"),
        i.size,
        _known(_ENTRY_TYPES, i.entry_type, "intent entry type"),
        i.entry_price,
        i.stop_loss,
        i.take_profit,
        _word(tf.TimeInForce.Name(i.time_in_force), "TIME_IN_FORCE_")
        if i.time_in_force in tf.TimeInForce.values()
        else "",
        i.expires_at_ns,
        i.conviction,
        i.risk_amount,
        i.reduce_only,
        i.ts_intent_ns,
    )


def _telemetry_row(e: am.TelemetryEvent) -> Row:
    kind = e.kind
    name = am.TelemetryEventKind.Name(kind) if kind in am.TelemetryEventKind.values() else str(kind)
    return (
        e.event_id,
        _word(name, "TELEMETRY_EVENT_KIND_"),
        e.fields.get("name", ""),
        e.decision_id,
        e.signal_id,
        _stage(e.stage),
        e.venue,
        e.symbol,
        e.strategy_id,
        e.ts_ns,
        e.value,
        e.duration_ns,
        e.model,
        e.detail,
        json.dumps(
            {storable(k): storable(v) for k, v in e.fields.items()}, separators=(",", ":"), sort_keys=True
        ),
    )


_LIQUIDITY = {
    tf.LIQUIDITY_UNSPECIFIED: "unspecified",
    tf.LIQUIDITY_MAKER: "maker",
    tf.LIQUIDITY_TAKER: "taker",
}


def _add_executions(rows: Rows, batch: bus.Executions, ts_publish_ns: int, entry_id: str) -> None:
    """A batch's executions; a gap marker becomes a notice of channel 'executions' (at its
    publish time: an entry written twice is one notice)."""
    if batch.gap:
        if not batch.venue:
            raise Corrupt(f"bus entry {entry_id}: an executions gap marker without its venue")
        rows.notices.append(
            (batch.venue, "", ts_publish_ns, ts_publish_ns, "gap", "executions", batch.gap_reason, None)
        )
    for execution in batch.executions:
        rows.executions.append(_storable(_execution_row(execution, batch.epoch)))


def _execution_row(e: tf.Execution, epoch: int) -> Row:
    order = e.order
    fill: tuple[Any, ...] = (None,) * 8
    if e.HasField("fill"):
        f = e.fill
        liquidity = _known(_LIQUIDITY, f.liquidity, "fill liquidity")
        fill = (f.fill_id, f.price, f.size, f.fee, f.fee_asset, liquidity, f.trade_id, f.ts_event_ns)
    return (
        e.venue,
        epoch,
        e.sequence,
        e.ts_event_ns,
        order.order_id,
        order.client_order_id,
        order.symbol,
        _known(_SIDES, order.side, "order side"),
        _enum_word(tf.OrderType, order.type, "ORDER_TYPE_"),
        _enum_word(tf.TimeInForce, order.time_in_force, "TIME_IN_FORCE_"),
        order.post_only,
        order.reduce_only,
        order.price,
        order.size,
        order.filled_size,
        order.average_fill_price,
        _enum_word(tf.OrderStatus, order.status, "ORDER_STATUS_"),
        order.status_reason,
        order.created_ns,
        order.updated_ns,
        *fill,
        order.trigger_price,
    )


def _funding_rows(batch: bus.FundingPayments, entry_id: str) -> Iterator[Row]:
    if not batch.venue:
        raise Corrupt(f"bus entry {entry_id}: funding payments without their venue")
    for p in batch.payments:
        yield (batch.venue, p.funding_id, p.ts_ns, p.symbol, p.asset, p.amount, p.rate, p.position_size)


_CHANGE_KINDS = {
    bus.InstrumentChange.KIND_LISTED: "listed",
    bus.InstrumentChange.KIND_DELISTED: "delisted",
    bus.InstrumentChange.KIND_CHANGED: "changed",
}


def _instrument_rows(batch: bus.InstrumentChanges, ts_publish_ns: int, entry_id: str) -> Iterator[Row]:
    if not batch.venue:
        raise Corrupt(f"bus entry {entry_id}: instrument changes without their venue")
    for change in batch.changes:
        if not change.symbol:
            raise Corrupt(f"bus entry {entry_id}: an instrument change without its symbol")
        kind = _known(_CHANGE_KINDS, change.kind, "instrument change kind")
        after = change.after if change.HasField("after") else None
        before = change.before if change.HasField("before") else None
        yield (
            batch.venue,
            change.symbol,
            batch.ts_ns,
            kind,
            batch.initial,
            ",".join(change.fields),
            "" if after is None else after.tick_size,
            "" if after is None else after.lot_size,
            "" if after is None else after.min_size,
            "" if after is None else after.min_notional,
            None if after is None else after.active,
            "" if before is None else _instrument_json(before),
            "" if after is None else _instrument_json(after),
            ts_publish_ns,
        )


def _account_rows(account: bus.AccountSnapshot, ts_publish_ns: int, entry_id: str) -> Iterator[Row]:
    if not account.venue or account.as_of_ns <= 0:
        raise Corrupt(f"bus entry {entry_id}: an account snapshot without its venue or time")
    venue, at, snapshot = account.venue, account.as_of_ns, account.snapshot
    for b in account.balances:
        if not b.asset:
            raise Corrupt(f"bus entry {entry_id}: a balance without its asset")
        yield (venue, "balance", storable(b.asset), at, snapshot, b.free, b.locked, b.total, "", "", "",
               ts_publish_ns)  # fmt: skip
    for p in account.positions:
        if not p.symbol:
            raise Corrupt(f"bus entry {entry_id}: a position without its symbol")
        yield (venue, "position", storable(p.symbol), at, snapshot, "", "", "", p.size, p.entry_price,
               p.realized_pnl, ts_publish_ns)  # fmt: skip


def _instrument_json(instrument: common.Instrument) -> str:
    """The instrument as jsonb: every field, decimals as the wire's strings, the kind by name."""
    fields = {f.name: getattr(instrument, f.name) for f in common.Instrument.DESCRIPTOR.fields}
    fields["kind"] = _enum_word(common.InstrumentKind, instrument.kind, "INSTRUMENT_KIND_")
    return _json(fields)


def _regime_row(change: ow.RegimeChange, ts_publish_ns: int) -> Row:
    features = change.features
    return (
        change.venue,
        change.symbol,
        _known(_TIMEFRAMES, change.timeframe, "regime change timeframe"),
        change.at_ns,
        change.at_bar_ns,
        change.since_ns,
        _known(_REGIMES, change.previous, "previous regime"),
        _known(_REGIMES, change.regime, "regime"),
        features.adx,
        features.di_plus,
        features.di_minus,
        features.vol_ratio,
        features.volume_ratio,
        ts_publish_ns,
    )


def _audit_row(entry: sv.AuditEntry, ts_publish_ns: int, entry_id: str) -> Row:
    if not (entry.id and entry.kind and entry.ts_ns > 0):
        raise Corrupt(f"bus entry {entry_id}: a Supervisor audit entry without its id, kind or time")
    return (entry.id, entry.ts_ns, entry.kind, entry.proposal_id, entry.detail, entry.who, ts_publish_ns)


def _screen_row(result: sc.ScreenResult, ts_publish_ns: int, entry_id: str) -> Row:
    if not (result.screen and result.venue and result.top_n):
        raise Corrupt(f"bus entry {entry_id}: a screen result without its screen, venue or top")
    top = [row.symbol for row in result.ranked[: result.top_n]]
    return (
        result.screen,
        result.venue,
        result.computed_ns,
        result.top_n,
        _json([storable(symbol) for symbol in top]),
        _json([_ranked(row) for row in result.ranked]),
        result.universe,
        result.left_out,
        _json({storable(metric): count for metric, count in sorted(result.missing.items())}),
        result.stale,
        result.filtered_out,
        result.oldest_input_ns,
        result.newest_input_ns,
        ts_publish_ns,
    )


def _ranked(row: sc.RankedInstrument) -> dict[str, Any]:
    """A ranked instrument for the jsonb column: its metrics the wire's decimal strings (exact)."""
    if not math.isfinite(row.score):
        raise Corrupt(f"{row.symbol[:64]!r} ranked with a score of {row.score}")
    metrics = {storable(m.metric): storable(m.value) for m in row.metrics}
    return {"rank": row.rank, "symbol": storable(row.symbol), "score": row.score, "metrics": metrics,
            "as_of_ns": row.as_of_ns}  # fmt: skip


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _enum_word(enum: Any, value: int, prefix: str) -> str:
    """An enum value's name as stored ("ORDER_TYPE_LIMIT" -> "limit"); a value this build does
    not know yet (a newer venue's) is kept as its number rather than lost."""
    return _word(enum.Name(value), prefix) if value in enum.values() else str(value)


def _known(names: Mapping[Any, str], value: int, what: str) -> str:
    name = names.get(value)
    if name is None:
        raise Corrupt(f"{what} {value} is not one the recorder knows")
    return name
