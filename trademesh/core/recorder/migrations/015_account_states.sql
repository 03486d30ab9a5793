-- Every venue account's balances and positions (streams `account.{<venue>}`, bus.v1.AccountSnapshot,
-- TradeFlow.StreamAccount followed by ingest): one row per balance (`item` 'balance', `name` its
-- asset: free, locked, total) or position (`item` 'position', `name` its symbol: size signed,
-- entry_price, realized_pnl) as the venue said it at `as_of_ns`. `snapshot` rows are the whole
-- account then (a stream's first answer, at each (re)connection); the others are what changed. So
-- the account at a time T is each item's last row at or before T (a position closed has size 0).
--
-- Partitioned by the venue's time and keyed on the item with it: an entry recorded twice (a
-- retried flush) is one row. Money and sizes are NUMERIC, exactly the wire's decimal strings.

SELECT tm_create_timed_table('account_states', 'as_of_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    item text NOT NULL CHECK (item IN ('balance', 'position')),
    name text NOT NULL CHECK (name <> ''),
    as_of_ns bigint NOT NULL,
    snapshot boolean NOT NULL,
    free numeric,
    locked numeric,
    total numeric,
    size numeric,
    entry_price numeric,
    realized_pnl numeric,
    ts_publish_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, item, name, as_of_ns)
$$);

-- "The account's snapshots of a venue": by venue and time.
CREATE INDEX account_states_venue_time ON account_states (venue, as_of_ns);
