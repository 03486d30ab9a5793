-- The venues' 24h volume on their tickers, and their perpetuals' funding rates (issue 42: the
-- Screener ranks by them). Numbered 012: 011 is the Screener's results (screen_results), made on
-- another branch at the same time.
--
-- tickers: the 24h volume the venue states with each ticker (marketdata.v1.Ticker
-- base_volume_24h, quote_volume_24h), NULL where it states none; rows recorded before this
-- migration have NULL.
--
-- funding_rates: every event of the venues' funding channel (streams `md.{<venue>}.funding`,
-- marketdata.v1.FundingRate): a perpetual's rate as the venue stated it at ts_event_ns, the
-- funding time it is paid at (NULL when the venue does not say), mark and index prices (NULL
-- likewise). Not the account's funding payments (table `funding`, migration 009): this is the
-- market's rate, whether the account holds a position or not. Partitioned by the event time and
-- keyed on the market with it: an event delivered twice is recorded once. Rates and prices are
-- NUMERIC, exactly the wire's decimal strings.

ALTER TABLE tickers ADD COLUMN base_volume_24h numeric, ADD COLUMN quote_volume_24h numeric;

SELECT tm_create_timed_table('funding_rates', 'ts_event_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    rate numeric NOT NULL,
    next_funding_ns bigint,
    mark_price numeric,
    index_price numeric,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, ts_event_ns)
$$);
