-- Every venue's instrument changes (streams `md.{<venue>}.instruments`, bus.v1.InstrumentChanges,
-- read by ingest from MarketData.ListInstruments): one row per listing, delisting or change of
-- trading rules, as ingest published it (docs/bus.md, "Instruments"). The stream's first entry
-- lists every instrument then (`initial`: the venue's list when it was first read, not news).
--
-- Partitioned by the time the list was read (ts_ns) and keyed on the market with it: an entry
-- recorded twice (a retry) is one row. `before` and `after` are the instrument as the wire has
-- it (jsonb, decimals as strings: exact); its trading rules after the change are columns too
-- (NUMERIC, NULL for a delisting), `fields` the names of what changed (CHANGED).

SELECT tm_create_timed_table('instrument_changes', 'ts_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_ns bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('listed', 'delisted', 'changed')),
    initial boolean NOT NULL,
    fields text[] NOT NULL,
    tick_size numeric,
    lot_size numeric,
    min_size numeric,
    min_notional numeric,
    active boolean,
    before jsonb,
    after jsonb,
    ts_publish_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_ns)
$$);

-- "What happened to this market": by venue, symbol and time is the key; by kind for the news.
CREATE INDEX instrument_changes_kind_time ON instrument_changes (kind, ts_ns) WHERE NOT initial;
