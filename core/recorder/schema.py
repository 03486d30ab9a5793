"""The recorder's tables as the writer sees them: staging columns and the statement that moves
staged rows into the table, idempotently.

A row tuple (core.recorder.rows) has the staging table's columns in order. Prices and sizes
are staged as the wire's text and turned into NUMERIC inside PostgreSQL, so the recorder does
no per-value decimal work in Python and a malformed one fails the batch. Single values go
through tm_decimal() (plain decimals only). Book levels, the bulk of the values, are staged
as one space-joined text per side and field (COPY of text[] columns cost asyncpg seven times
as much) and go through the plain NUMERIC cast, which refuses anything that is not a number
but lets "NaN", "Infinity" and exponents through: a stricter check there doubled the cost of
the insert. core.recorder.rows makes sure no level value itself holds a space.
The tables themselves are created by migrations/*.sql.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BARS",
    "BOOK",
    "CANDLES",
    "NOTICES",
    "POSITION_REQUESTS",
    "SIGNALS",
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
    ),
    """
    INSERT INTO tickers (venue, symbol, ts_event_ns, ts_recv_ns,
                         best_bid, best_bid_size, best_ask, best_ask_size, last_price)
    SELECT venue, symbol, ts_event_ns, ts_recv_ns,
           tm_decimal_or_null(best_bid, 'best bid'), tm_decimal_or_null(best_bid_size, 'best bid size'),
           tm_decimal_or_null(best_ask, 'best ask'), tm_decimal_or_null(best_ask_size, 'best ask size'),
           tm_decimal_or_null(last_price, 'last price')
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

# The detector's signals: rules arrive as JSON text (core.recorder.rows) and become jsonb.
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

TABLES = (TRADES, BOOK, TICKERS, CANDLES, NOTICES, BARS, SIGNALS, POSITION_REQUESTS)
