-- The detector's signals and position requests (streams `signals`, `position_requests`).
--
-- Partitioned by the time the strategy emitted them (ts_signal_ns, ts_request_ns: the
-- engine's clock) and keyed on their id with that time (a partitioned table's unique keys
-- must hold its partition column). Conviction, score, threshold and fraction are NUMERIC,
-- exactly the wire's decimal strings. Queries go by strategy and time, hence the second index.

SELECT tm_create_timed_table('signals', 'ts_signal_ns', $$
    signal_id text NOT NULL CHECK (signal_id <> ''),
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    direction text NOT NULL CHECK (direction IN ('long', 'short', 'flat')),
    conviction numeric NOT NULL,
    score numeric NOT NULL,
    threshold numeric NOT NULL,
    strategy_id text NOT NULL,
    patch_version bigint NOT NULL,
    -- Every rule of the score: [{"name", "weight" (decimal string), "value" (text), "fired"}].
    rules jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'array'),
    ts_event_ns bigint NOT NULL,
    ts_signal_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (signal_id, ts_signal_ns)
$$);

CREATE INDEX signals_strategy_time ON signals (strategy_id, ts_signal_ns);

-- direction: the side of the new position for open and flip, NULL when the request has none;
-- fraction: the part of the position a reduce takes off, NULL when the request has none.
SELECT tm_create_timed_table('position_requests', 'ts_request_ns', $$
    request_id text NOT NULL CHECK (request_id <> ''),
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    action text NOT NULL CHECK (action IN ('open', 'close', 'reduce', 'flip')),
    direction text CHECK (direction IN ('long', 'short', 'flat')),
    fraction numeric,
    strategy_id text NOT NULL,
    patch_version bigint NOT NULL,
    ts_event_ns bigint NOT NULL,
    ts_request_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (request_id, ts_request_ns)
$$);

CREATE INDEX position_requests_strategy_time ON position_requests (strategy_id, ts_request_ns);
