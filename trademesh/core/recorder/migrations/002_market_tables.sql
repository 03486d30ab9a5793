-- Every market event and bar the bus carries, one table per kind.
--
-- Times are int64 nanoseconds since the Unix epoch, as on the wire (tm_time() shows one as a
-- timestamptz). ts_event_ns: when the venue says it happened; ts_recv_ns: when the venue
-- service received it; recorded_at: when the recorder inserted the row (its transaction
-- commits right after), so recorded_at - tm_time(ts_recv_ns) is receive-to-store latency.
-- Prices and sizes are NUMERIC, exactly the wire's decimal strings.
-- Each primary key is the event's natural key, time column included (a partitioned table's
-- unique keys must hold its partition column); it also serves queries by venue, symbol, time.

SELECT tm_create_timed_table('trades', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    trade_id text NOT NULL,
    price numeric NOT NULL,
    size numeric NOT NULL,
    taker_side text CHECK (taker_side IN ('buy', 'sell')),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns, trade_id)
$$);

-- Snapshots (snapshot = true: the whole book) and deltas (changed levels; size 0 removes a
-- level), levels best first as parallel price/size arrays.
SELECT tm_create_timed_table('book_events', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    sequence bigint NOT NULL,
    snapshot boolean NOT NULL,
    bid_prices numeric[] NOT NULL,
    bid_sizes numeric[] NOT NULL,
    ask_prices numeric[] NOT NULL,
    ask_sizes numeric[] NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns, sequence, snapshot)
$$);

SELECT tm_create_timed_table('tickers', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    best_bid numeric,
    best_bid_size numeric,
    best_ask numeric,
    best_ask_size numeric,
    last_price numeric,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns)
$$);

-- The venue's own candles, partitioned by open time. One row per interval: a closed candle
-- replaces an open one, a later version of the same state replaces an earlier one.
SELECT tm_create_timed_table('candles', 'open_time_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    timeframe text NOT NULL,
    open_time_ns bigint NOT NULL,
    open numeric NOT NULL,
    high numeric NOT NULL,
    low numeric NOT NULL,
    close numeric NOT NULL,
    volume numeric NOT NULL,
    quote_volume numeric,
    trade_count bigint NOT NULL,
    closed boolean NOT NULL,
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, timeframe, open_time_ns)
$$);

-- GAP and RESYNC notices of the market streams. A gap: events of `channel` after since_ns
-- (NULL: unknown) and before ts_event_ns may be missing.
SELECT tm_create_timed_table('notices', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL,
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('gap', 'resync')),
    channel text NOT NULL,
    reason text NOT NULL,
    since_ns bigint,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns, channel, kind)
$$);

-- The bar aggregator's bars, partitioned by open time. A repaired bar replaces the live one
-- (never the reverse); otherwise the later publication wins.
SELECT tm_create_timed_table('bars', 'open_time_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    timeframe text NOT NULL,
    open_time_ns bigint NOT NULL,
    open numeric NOT NULL,
    high numeric NOT NULL,
    low numeric NOT NULL,
    close numeric NOT NULL,
    volume numeric NOT NULL,
    quote_volume numeric,
    trade_count bigint NOT NULL,
    vwap numeric,
    repaired boolean NOT NULL,
    ts_publish_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, timeframe, open_time_ns)
$$);
