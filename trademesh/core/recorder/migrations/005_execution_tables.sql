-- Every venue's executions (streams `exec.<venue>`): one row per order update, with its fill
-- when the update is one.
--
-- Partitioned by the venue's time of the execution (ts_event_ns) and keyed on the venue's
-- execution counter: the venue process (epoch, its start time in ns) and the sequence it gave
-- the execution, with that time (a partitioned table's unique keys must hold its partition
-- column). An entry recorded twice is recorded once. Money and sizes are NUMERIC, exactly the
-- wire's decimal strings; those an update may not have (a market order's price, the fill
-- columns of an update that is not a fill) are NULL. Gap markers of these streams go to
-- `notices` with channel 'executions'. Queries go by order and by time, hence the indexes.

SELECT tm_create_timed_table('executions', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    epoch bigint NOT NULL,
    sequence bigint NOT NULL,
    ts_event_ns bigint NOT NULL,
    order_id text NOT NULL CHECK (order_id <> ''),
    client_order_id text NOT NULL,
    symbol text NOT NULL CHECK (symbol <> ''),
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    -- The order's type, time in force and status, as their enum names in lower case
    -- (limit, market, ...; gtc, ioc, fok; open, partially_filled, filled, canceled, ...).
    order_type text NOT NULL,
    time_in_force text NOT NULL,
    post_only boolean NOT NULL,
    reduce_only boolean NOT NULL,
    price numeric,
    size numeric NOT NULL,
    filled_size numeric NOT NULL,
    average_fill_price numeric,
    status text NOT NULL,
    status_reason text NOT NULL,
    created_ns bigint NOT NULL,
    updated_ns bigint NOT NULL,
    -- The fill of this update; all NULL when it is not a fill.
    fill_id text,
    fill_price numeric,
    fill_size numeric,
    fee numeric,
    fee_asset text,
    liquidity text CHECK (liquidity IN ('maker', 'taker', 'unspecified')),
    trade_id text,
    fill_ts_ns bigint,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, epoch, sequence, ts_event_ns)
$$);

CREATE INDEX executions_order ON executions (venue, order_id, ts_event_ns);
CREATE INDEX executions_symbol_time ON executions (venue, symbol, ts_event_ns);
