"""The recorder's tables as the writer sees them: staging columns and the statement that moves
staged rows into the table, idempotently.

A row tuple (trademesh.core.recorder.rows) has the staging table's columns in order. Prices and sizes
are staged as the wire's text and turned into NUMERIC inside PostgreSQL, so the recorder does
no per-value decimal work in Python and a malformed one fails the batch. Single values go
through tm_decimal() (plain decimals only). Book levels, the bulk of the values, are staged
as one space-joined text per side and field (COPY of text[] columns cost asyncpg seven times
as much) and go through the plain NUMERIC cast, which refuses anything that is not a number
but lets "NaN", "Infinity" and exponents through: a stricter check there doubled the cost of
the insert. trademesh.core.recorder.rows makes sure no level value itself holds a space.
The tables themselves are created by migrations/*.sql.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACCOUNT_STATES",
    "ADVISOR_TELEMETRY",
    "BARS",
    "BOOK",
    "CANDLES",
    "DECISIONS",
    "EXECUTIONS",
    "FUNDING",
    "FUNDING_RATES",
    "INSTRUMENT_CHANGES",
    "INTENTS",
    "JOURNAL",
    "LIQUIDATIONS",
    "MARK_PRICES",
    "NOTICES",
    "OPEN_INTEREST",
    "POSITION_REQUESTS",
    "REGIME_CHANGES",
    "SCREEN_RESULTS",
    "SIGNALS",
    "SUPERVISOR_AUDIT",
    "TABLES",
    "TICKERS",
    "TRADES",
    "Table",
]


@dataclass(frozen=True)
class Table:
    name: str
    # The partitioning column and its position in a row tuple.
    time_column: str
    time_index: int
    # Staging columns: (name, type), in row-tuple order.
    columns: tuple[tuple[str, str], ...]
    # Moves the rows of `staged` into the table; duplicates of rows already there change nothing.
    move_sql: str

    @property
    def stage(self) -> str:
        return f"stage_{self.name}"

    @property
    def insert_sql(self) -> str:
        """Empties the staging table into the table (its rows as `staged`), in one statement."""
        return f"WITH staged AS (DELETE FROM {self.stage} RETURNING *) {self.move_sql}"

    @property
    def stage_ddl(self) -> str:
        columns = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ({columns}) ON COMMIT DELETE ROWS"


_MARKET = (("venue", "text"), ("symbol", "text"), ("ts_event_ns", "int8"), ("ts_recv_ns", "int8"))

TRADES = Table(
    "trades",
    "ts_event_ns",
    2,
    (*_MARKET, ("trade_id", "text"), ("price", "text"), ("size", "text"), ("taker_side", "text")),
    """
    INSERT INTO trades (venue, symbol, ts_event_ns, ts_recv_ns, trade_id, price, size, taker_side)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, trade_id,
           tm_decimal(price, 'trade price'), tm_decimal(size, 'trade size'), taker_side
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

BOOK = Table(
    "book_events",
    "ts_event_ns",
    2,
    (
        *_MARKET,
        ("sequence", "int8"),
        ("snapshot", "bool"),
        ("bid_prices", "text"),
        ("bid_sizes", "text"),
        ("ask_prices", "text"),
        ("ask_sizes", "text"),
    ),
    """
    INSERT INTO book_events (venue, symbol, ts_event_ns, ts_recv_ns, sequence, snapshot,
                             bid_prices, bid_sizes, ask_prices, ask_sizes)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, sequence, snapshot,
           string_to_array(bid_prices, ' ')::numeric[], string_to_array(bid_sizes, ' ')::numeric[],
           string_to_array(ask_prices, ' ')::numeric[], string_to_array(ask_sizes, ' ')::numeric[]
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

TICKERS = Table(
    "tickers",
    "ts_event_ns",
    2,
    (
        *_MARKET,
        ("best_bid", "text"),
        ("best_bid_size", "text"),
        ("best_ask", "text"),
        ("best_ask_size", "text"),
        ("last_price", "text"),
        ("base_volume_24h", "text"),
        ("quote_volume_24h", "text"),
        ("open_24h", "text"),
    ),
    """
    INSERT INTO tickers (venue, symbol, ts_event_ns, ts_recv_ns, best_bid, best_bid_size, best_ask,
                         best_ask_size, last_price, base_volume_24h, quote_volume_24h, open_24h)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns,
           tm_decimal_or_null(best_bid, 'best bid'), tm_decimal_or_null(best_bid_size, 'best bid size'),
           tm_decimal_or_null(best_ask, 'best ask'), tm_decimal_or_null(best_ask_size, 'best ask size'),
           tm_decimal_or_null(last_price, 'last price'),
           tm_decimal_or_null(base_volume_24h, '24h base volume'),
           tm_decimal_or_null(quote_volume_24h, '24h quote volume'),
           tm_decimal_or_null(open_24h, '24h open')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# One version per interval survives a batch (DISTINCT ON: closed first, then the latest), so
# ON CONFLICT DO UPDATE never meets the same key twice in one statement.
CANDLES = Table(
    "candles",
    "open_time_ns",
    5,
    (
        *_MARKET,
        ("timeframe", "text"),
        ("open_time_ns", "int8"),
        ("open", "text"),
        ("high", "text"),
        ("low", "text"),
        ("close", "text"),
        ("volume", "text"),
        ("quote_volume", "text"),
        ("trade_count", "int8"),
        ("closed", "bool"),
    ),
    """
    INSERT INTO candles AS c (venue, symbol, timeframe, open_time_ns, open, high, low, close,
                              volume, quote_volume, trade_count, closed, ts_event_ns, ts_recv_ns)
    SELECT DISTINCT ON (venue, symbol, timeframe, open_time_ns)
           venue, symbol, timeframe, open_time_ns,
           tm_decimal(open, 'candle open'), tm_decimal(high, 'candle high'),
           tm_decimal(low, 'candle low'), tm_decimal(close, 'candle close'),
           tm_decimal(volume, 'candle volume'), tm_decimal_or_null(quote_volume, 'candle quote volume'),
           trade_count, closed, ts_event_ns, ts_recv_ns
    FROM staged
    ORDER BY venue, symbol, timeframe, open_time_ns, closed DESC, ts_event_ns DESC
    ON CONFLICT (venue, symbol, timeframe, open_time_ns) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, quote_volume = excluded.quote_volume,
        trade_count = excluded.trade_count, closed = excluded.closed,
        ts_event_ns = excluded.ts_event_ns, ts_recv_ns = excluded.ts_recv_ns,
        recorded_at = excluded.recorded_at
    WHERE (excluded.closed AND NOT c.closed)
       OR (excluded.closed = c.closed AND excluded.ts_event_ns > c.ts_event_ns)
    """,
)

NOTICES = Table(
    "notices",
    "ts_event_ns",
    2,
    (*_MARKET, ("kind", "text"), ("channel", "text"), ("reason", "text"), ("since_ns", "int8")),
    """
    INSERT INTO notices (venue, symbol, ts_event_ns, ts_recv_ns, kind, channel, reason, since_ns)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, kind, channel, reason, since_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

BARS = Table(
    "bars",
    "open_time_ns",
    3,
    (
        ("venue", "text"),
        ("symbol", "text"),
        ("timeframe", "text"),
        ("open_time_ns", "int8"),
        ("open", "text"),
        ("high", "text"),
        ("low", "text"),
        ("close", "text"),
        ("volume", "text"),
        ("quote_volume", "text"),
        ("trade_count", "int8"),
        ("vwap", "text"),
        ("repaired", "bool"),
        ("ts_publish_ns", "int8"),
    ),
    """
    INSERT INTO bars AS b (venue, symbol, timeframe, open_time_ns, open, high, low, close, volume,
                           quote_volume, trade_count, vwap, repaired, ts_publish_ns)
    SELECT DISTINCT ON (venue, symbol, timeframe, open_time_ns)
           venue, symbol, timeframe, open_time_ns,
           tm_decimal(open, 'bar open'), tm_decimal(high, 'bar high'),
           tm_decimal(low, 'bar low'), tm_decimal(close, 'bar close'),
           tm_decimal(volume, 'bar volume'), tm_decimal_or_null(quote_volume, 'bar quote volume'),
           trade_count, tm_decimal_or_null(vwap, 'bar vwap'), repaired, ts_publish_ns
    FROM staged
    ORDER BY venue, symbol, timeframe, open_time_ns, repaired DESC, ts_publish_ns DESC
    ON CONFLICT (venue, symbol, timeframe, open_time_ns) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, quote_volume = excluded.quote_volume,
        trade_count = excluded.trade_count, vwap = excluded.vwap, repaired = excluded.repaired,
        ts_publish_ns = excluded.ts_publish_ns, recorded_at = excluded.recorded_at
    WHERE (excluded.repaired AND NOT b.repaired)
       OR (excluded.repaired = b.repaired AND excluded.ts_publish_ns > b.ts_publish_ns)
    """,
)

# The detector's signals: rules arrive as JSON text (trademesh.core.recorder.rows) and become jsonb.
SIGNALS = Table(
    "signals",
    "ts_signal_ns",
    11,
    (
        ("signal_id", "text"),
        ("venue", "text"),
        ("symbol", "text"),
        ("direction", "text"),
        ("conviction", "text"),
        ("score", "text"),
        ("threshold", "text"),
        ("strategy_id", "text"),
        ("patch_version", "int8"),
        ("rules", "text"),
        ("ts_event_ns", "int8"),
        ("ts_signal_ns", "int8"),
    ),
    """
    INSERT INTO signals (signal_id, venue, symbol, direction, conviction, score, threshold,
                         strategy_id, patch_version, rules, ts_event_ns, ts_signal_ns)
    SELECT signal_id, venue, symbol, direction, tm_decimal(conviction, 'signal conviction'),
           tm_decimal(score, 'signal score'), tm_decimal(threshold, 'signal threshold'),
           strategy_id, patch_version, rules::jsonb, ts_event_ns, ts_signal_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

POSITION_REQUESTS = Table(
    "position_requests",
    "ts_request_ns",
    9,
    (
        ("request_id", "text"),
        ("venue", "text"),
        ("symbol", "text"),
        ("action", "text"),
        ("direction", "text"),
        ("fraction", "text"),
        ("strategy_id", "text"),
        ("patch_version", "int8"),
        ("ts_event_ns", "int8"),
        ("ts_request_ns", "int8"),
    ),
    """
    INSERT INTO position_requests (request_id, venue, symbol, action, direction, fraction,
                                   strategy_id, patch_version, ts_event_ns, ts_request_ns)
    SELECT request_id, venue, symbol, action, direction,
           tm_decimal_or_null(fraction, 'position request fraction'),
           strategy_id, patch_version, ts_event_ns, ts_request_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# The advisor's decisions: the whole Decision as bytes, the columns lists filter on.
DECISIONS = Table(
    "decisions",
    "ts_decision_ns",
    14,
    (
        ("decision_id", "text"),
        ("signal_id", "text"),
        ("venue", "text"),
        ("symbol", "text"),
        ("strategy_id", "text"),
        ("outcome", "text"),
        ("blocked_stage", "text"),
        ("block_reason", "text"),
        ("conviction_raw", "text"),
        ("conviction_calibrated", "text"),
        ("regime", "text"),
        ("synthesis", "text"),
        ("model_version", "text"),
        ("hypothetical", "bool"),
        ("ts_decision_ns", "int8"),
        ("decision", "bytea"),
    ),
    """
    INSERT INTO decisions (decision_id, signal_id, venue, symbol, strategy_id, outcome, blocked_stage,
                           block_reason, conviction_raw, conviction_calibrated, regime, synthesis,
                           model_version, hypothetical, ts_decision_ns, decision)
    SELECT decision_id, signal_id, venue, symbol, strategy_id, outcome, blocked_stage, block_reason,
           tm_decimal_or_null(conviction_raw, 'raw conviction'),
           tm_decimal_or_null(conviction_calibrated, 'calibrated conviction'),
           regime, synthesis, model_version, hypothetical, ts_decision_ns, decision
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

INTENTS = Table(
    "intents",
    "ts_intent_ns",
    17,
    (
        ("intent_id", "text"),
        ("decision_id", "text"),
        ("signal_id", "text"),
        ("venue", "text"),
        ("symbol", "text"),
        ("strategy_id", "text"),
        ("side", "text"),
        ("size", "text"),
        ("entry_type", "text"),
        ("entry_price", "text"),
        ("stop_loss", "text"),
        ("take_profit", "text"),
        ("time_in_force", "text"),
        ("expires_at_ns", "int8"),
        ("conviction", "text"),
        ("risk_amount", "text"),
        ("reduce_only", "bool"),
        ("ts_intent_ns", "int8"),
    ),
    """
    INSERT INTO intents (intent_id, decision_id, signal_id, venue, symbol, strategy_id, side, size,
                         entry_type, entry_price, stop_loss, take_profit, time_in_force,
                         expires_at_ns, conviction, risk_amount, reduce_only, ts_intent_ns)
    SELECT intent_id, decision_id, signal_id, venue, symbol, strategy_id, side,
           tm_decimal(size, 'intent size'), entry_type,
           tm_decimal_or_null(entry_price, 'intent entry price'),
           tm_decimal_or_null(stop_loss, 'intent stop loss'),
           tm_decimal_or_null(take_profit, 'intent take profit'), time_in_force, expires_at_ns,
           tm_decimal(conviction, 'intent conviction'), tm_decimal_or_null(risk_amount, 'intent risk'),
           reduce_only, ts_intent_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# Every telemetry event; its fields arrive as JSON text (trademesh.core.recorder.rows) and become jsonb.
ADVISOR_TELEMETRY = Table(
    "advisor_telemetry",
    "ts_ns",
    9,
    (
        ("event_id", "text"),
        ("kind", "text"),
        ("name", "text"),
        ("decision_id", "text"),
        ("signal_id", "text"),
        ("stage", "text"),
        ("venue", "text"),
        ("symbol", "text"),
        ("strategy_id", "text"),
        ("ts_ns", "int8"),
        ("value", "text"),
        ("duration_ns", "int8"),
        ("model", "text"),
        ("detail", "text"),
        ("fields", "text"),
    ),
    """
    INSERT INTO advisor_telemetry (event_id, kind, name, decision_id, signal_id, stage, venue, symbol,
                                   strategy_id, ts_ns, value, duration_ns, model, detail, fields)
    SELECT event_id, kind, name, decision_id, signal_id, stage, venue, symbol, strategy_id, ts_ns,
           value, duration_ns, model, detail, fields::jsonb
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# Every venue's executions, keyed on the venue's (epoch, sequence): a repeat changes nothing.
EXECUTIONS = Table(
    "executions",
    "ts_event_ns",
    3,
    (
        ("venue", "text"),
        ("epoch", "int8"),
        ("sequence", "int8"),
        ("ts_event_ns", "int8"),
        ("order_id", "text"),
        ("client_order_id", "text"),
        ("symbol", "text"),
        ("side", "text"),
        ("order_type", "text"),
        ("time_in_force", "text"),
        ("post_only", "bool"),
        ("reduce_only", "bool"),
        ("price", "text"),
        ("size", "text"),
        ("filled_size", "text"),
        ("average_fill_price", "text"),
        ("status", "text"),
        ("status_reason", "text"),
        ("created_ns", "int8"),
        ("updated_ns", "int8"),
        ("fill_id", "text"),
        ("fill_price", "text"),
        ("fill_size", "text"),
        ("fee", "text"),
        ("fee_asset", "text"),
        ("liquidity", "text"),
        ("trade_id", "text"),
        ("fill_ts_ns", "int8"),
        ("trigger_price", "text"),
    ),
    """
    INSERT INTO executions (venue, epoch, sequence, ts_event_ns, order_id, client_order_id, symbol,
                            side, order_type, time_in_force, post_only, reduce_only, price, size,
                            filled_size, average_fill_price, status, status_reason, created_ns,
                            updated_ns, fill_id, fill_price, fill_size, fee, fee_asset, liquidity,
                            trade_id, fill_ts_ns, trigger_price)
    SELECT venue, epoch, sequence, ts_event_ns, order_id, client_order_id, symbol, side, order_type,
           time_in_force, post_only, reduce_only, tm_decimal_or_null(price, 'order price'),
           tm_decimal(size, 'order size'), tm_decimal(filled_size, 'order filled size'),
           tm_decimal_or_null(average_fill_price, 'order average fill price'), status, status_reason,
           created_ns, updated_ns, fill_id, tm_decimal_or_null(fill_price, 'fill price'),
           tm_decimal_or_null(fill_size, 'fill size'), tm_decimal_or_null(fee, 'fill fee'), fee_asset,
           liquidity, trade_id, fill_ts_ns, tm_decimal_or_null(trigger_price, 'order trigger price')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

JOURNAL = Table(
    "inspector_journal",
    "now_ns",
    3,
    (
        ("instance", "text"),
        ("entry_ms", "int8"),
        ("entry_seq", "int8"),
        ("now_ns", "int8"),
        ("input", "text"),
        ("venue", "text"),
        ("client_order_id", "text"),
        ("entry", "bytea"),
    ),
    """
    INSERT INTO inspector_journal (instance, entry_ms, entry_seq, now_ns, input, venue, client_order_id,
                                   entry)
    SELECT instance, entry_ms, entry_seq, now_ns, input, venue, client_order_id, entry
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

FUNDING = Table(
    "funding",
    "funding_time_ns",
    2,
    (
        ("venue", "text"),
        ("funding_id", "text"),
        ("funding_time_ns", "int8"),
        ("symbol", "text"),
        ("asset", "text"),
        ("amount", "text"),
        ("rate", "text"),
        ("position_size", "text"),
    ),
    """
    INSERT INTO funding (venue, funding_id, funding_time_ns, symbol, asset, amount, rate, position_size)
    SELECT venue, funding_id, funding_time_ns, symbol, asset, tm_decimal(amount, 'funding amount'),
           tm_decimal_or_null(rate, 'funding rate'),
           tm_decimal_or_null(position_size, 'funding position size')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# A perpetual's funding rate as the venue stated it (md.{<venue>}.funding), keyed on the market and
# the event's time.
FUNDING_RATES = Table(
    "funding_rates",
    "ts_event_ns",
    2,
    (
        *_MARKET,
        ("rate", "text"),
        ("next_funding_ns", "int8"),
        ("mark_price", "text"),
        ("index_price", "text"),
    ),
    """
    INSERT INTO funding_rates (venue, symbol, ts_event_ns, ts_recv_ns, rate, next_funding_ns,
                               mark_price, index_price)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, tm_decimal(rate, 'funding rate'), next_funding_ns,
           tm_decimal_or_null(mark_price, 'mark price'), tm_decimal_or_null(index_price, 'index price')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# A derivative's mark and index prices, open interest, and the market's liquidations
# (md.{<venue>}.mark, .open_interest, .liquidations), keyed on the market and the event's time
# (a liquidation on all it states: it has no id).
MARK_PRICES = Table(
    "mark_prices",
    "ts_event_ns",
    2,
    (*_MARKET, ("mark_price", "text"), ("index_price", "text")),
    """
    INSERT INTO mark_prices (venue, symbol, ts_event_ns, ts_recv_ns, mark_price, index_price)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, tm_decimal(mark_price, 'mark price'),
           tm_decimal_or_null(index_price, 'index price')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

OPEN_INTEREST = Table(
    "open_interest",
    "ts_event_ns",
    2,
    (*_MARKET, ("size", "text"), ("value", "text")),
    """
    INSERT INTO open_interest (venue, symbol, ts_event_ns, ts_recv_ns, size, value)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, tm_decimal(size, 'open interest size'),
           tm_decimal_or_null(value, 'open interest value')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

LIQUIDATIONS = Table(
    "liquidations",
    "ts_event_ns",
    2,
    (*_MARKET, ("side", "text"), ("price", "text"), ("size", "text")),
    """
    INSERT INTO liquidations (venue, symbol, ts_event_ns, ts_recv_ns, side, price, size)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns, side,
           tm_decimal(price, 'liquidation price'), tm_decimal(size, 'liquidation size')
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# Overwatch's regime changes: the figures are the wire's doubles, stored as double precision.
REGIME_CHANGES = Table(
    "regime_changes",
    "at_ns",
    3,
    (
        ("venue", "text"),
        ("symbol", "text"),
        ("timeframe", "text"),
        ("at_ns", "int8"),
        ("at_bar_ns", "int8"),
        ("since_ns", "int8"),
        ("previous", "text"),
        ("regime", "text"),
        ("adx", "float8"),
        ("di_plus", "float8"),
        ("di_minus", "float8"),
        ("vol_ratio", "float8"),
        ("volume_ratio", "float8"),
        ("ts_publish_ns", "int8"),
    ),
    """
    INSERT INTO regime_changes (venue, symbol, timeframe, at_ns, at_bar_ns, since_ns, previous, regime,
                                adx, di_plus, di_minus, vol_ratio, volume_ratio, ts_publish_ns)
    SELECT venue, symbol, timeframe, at_ns, at_bar_ns, since_ns, previous, regime,
           adx, di_plus, di_minus, vol_ratio, volume_ratio, ts_publish_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# The Screener's results: the top and the ranking as JSON (the metrics the wire's decimal strings).
SCREEN_RESULTS = Table(
    "screen_results",
    "computed_ns",
    2,
    (
        ("screen", "text"),
        ("venue", "text"),
        ("computed_ns", "int8"),
        ("top_n", "int4"),
        ("top", "text"),
        ("ranked", "text"),
        ("universe", "int4"),
        ("left_out", "int4"),
        ("missing", "text"),
        ("stale", "int4"),
        ("filtered_out", "int4"),
        ("oldest_input_ns", "int8"),
        ("newest_input_ns", "int8"),
        ("ts_publish_ns", "int8"),
    ),
    """
    INSERT INTO screen_results (screen, venue, computed_ns, top_n, top, ranked, universe, left_out,
                                missing, stale, filtered_out, oldest_input_ns, newest_input_ns, ts_publish_ns)
    SELECT screen, venue, computed_ns, top_n, top::jsonb, ranked::jsonb, universe, left_out,
           missing::jsonb, stale, filtered_out, oldest_input_ns, newest_input_ns, ts_publish_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# The Supervisor's audit trail: one row per entry, as it published it (docs/supervisor.md).
SUPERVISOR_AUDIT = Table(
    "supervisor_audit",
    "ts_ns",
    1,
    (
        ("id", "text"),
        ("ts_ns", "int8"),
        ("kind", "text"),
        ("proposal_id", "text"),
        ("detail", "text"),
        ("who", "text"),
        ("ts_publish_ns", "int8"),
    ),
    """
    INSERT INTO supervisor_audit (id, ts_ns, kind, proposal_id, detail, who, ts_publish_ns)
    SELECT id, ts_ns, kind, proposal_id, detail, who, ts_publish_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# A venue's listings, delistings and changed trading rules (md.{<venue>}.instruments), one row per
# market and read (docs/bus.md, "Instruments").
INSTRUMENT_CHANGES = Table(
    "instrument_changes",
    "ts_ns",
    2,
    (
        ("venue", "text"),
        ("symbol", "text"),
        ("ts_ns", "int8"),
        ("kind", "text"),
        ("initial", "bool"),
        ("fields", "text"),
        ("tick_size", "text"),
        ("lot_size", "text"),
        ("min_size", "text"),
        ("min_notional", "text"),
        ("active", "bool"),
        ("before", "text"),
        ("after", "text"),
        ("ts_publish_ns", "int8"),
    ),
    """
    INSERT INTO instrument_changes (venue, symbol, ts_ns, kind, initial, fields, tick_size, lot_size,
                                    min_size, min_notional, active, before, after, ts_publish_ns)
    SELECT venue, symbol, ts_ns, kind, initial, string_to_array(fields, ','),
           tm_decimal_or_null(tick_size, 'instrument tick size'),
           tm_decimal_or_null(lot_size, 'instrument lot size'),
           tm_decimal_or_null(min_size, 'instrument minimum size'),
           tm_decimal_or_null(min_notional, 'instrument minimum notional'),
           active, NULLIF(before, '')::jsonb, NULLIF(after, '')::jsonb, ts_publish_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

# A venue account's balances and positions (account.{<venue>}): one row per item and venue time.
ACCOUNT_STATES = Table(
    "account_states",
    "as_of_ns",
    3,
    (
        ("venue", "text"),
        ("item", "text"),
        ("name", "text"),
        ("as_of_ns", "int8"),
        ("snapshot", "bool"),
        ("free", "text"),
        ("locked", "text"),
        ("total", "text"),
        ("size", "text"),
        ("entry_price", "text"),
        ("realized_pnl", "text"),
        ("ts_publish_ns", "int8"),
    ),
    """
    INSERT INTO account_states (venue, item, name, as_of_ns, snapshot, free, locked, total, size,
                                entry_price, realized_pnl, ts_publish_ns)
    SELECT venue, item, name, as_of_ns, snapshot,
           tm_decimal_or_null(free, 'balance free'), tm_decimal_or_null(locked, 'balance locked'),
           tm_decimal_or_null(total, 'balance total'), tm_decimal_or_null(size, 'position size'),
           tm_decimal_or_null(entry_price, 'position entry price'),
           tm_decimal_or_null(realized_pnl, 'position realized pnl'), ts_publish_ns
    FROM staged
    ON CONFLICT DO NOTHING
    """,
)

TABLES = (
    TRADES, BOOK, TICKERS, CANDLES, NOTICES, BARS, SIGNALS, POSITION_REQUESTS, DECISIONS, INTENTS,
    ADVISOR_TELEMETRY, EXECUTIONS, JOURNAL, FUNDING, REGIME_CHANGES, SCREEN_RESULTS, FUNDING_RATES,
    SUPERVISOR_AUDIT, INSTRUMENT_CHANGES, ACCOUNT_STATES, MARK_PRICES, OPEN_INTEREST, LIQUIDATIONS,
)  # fmt: skip
