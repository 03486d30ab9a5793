-- The venues' derivatives data (issue 60): every event of the mark, open interest and
-- liquidations channels (streams `md.{<venue>}.mark`, `.open_interest`, `.liquidations`;
-- marketdata.v1 MarkPrice, OpenInterest, Liquidation), as the funding rates are kept (012).
-- Numbered 016: 017 is another part of issue 60, made at the same time.
--
-- mark_prices: a derivative's mark price (what margin and liquidation are reckoned at) and its
-- index price (NULL when the venue does not say) as the venue stated them at ts_event_ns.
--
-- open_interest: a derivative's open interest at ts_event_ns, `size` in the instrument's size
-- unit (contracts where it is sized in contracts), `value` in the quote asset (NULL when the
-- venue does not say). Streamed, or polled where the venue streams none (Admin's StreamStatus
-- poll_interval_ms says which).
--
-- liquidations: the liquidation orders the venue executed in the market (anyone's, not the
-- account's own: those are executions with Fill.liquidation), as it published them: the
-- order's side (sell closes a long, buy a short), its price and filled size. A liquidation has
-- no id on the venues' public streams, so its key is all it states: a liquidation delivered
-- twice is recorded once, and two the venue published alike at the same ns are one row.
--
-- Each table is partitioned by the event time and keyed on the market with it, so an event
-- delivered twice is recorded once (the recorder's inserts do nothing on a conflict). Prices,
-- sizes and values are NUMERIC, exactly the wire's decimal strings.

SELECT tm_create_timed_table('mark_prices', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    mark_price numeric NOT NULL,
    index_price numeric,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns)
$$);

SELECT tm_create_timed_table('open_interest', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    size numeric NOT NULL,
    value numeric,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns)
$$);

SELECT tm_create_timed_table('liquidations', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    price numeric NOT NULL,
    size numeric NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns, side, price, size)
$$);
