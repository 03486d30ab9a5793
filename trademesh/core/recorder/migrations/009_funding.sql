-- Every venue's funding payments (streams `funding.{<venue>}`: what TradeFlow.ListFundingPayments
-- answers, read by ingest): one row per payment, with the funding rate the venue applied where
-- it says (the sim, Deribit; Binance's income and OKX's bills carry none: NULL). The rates are
-- what a backtest replays as recorded funding (trademesh/core/backtest/funding_rates.py).
--
-- Partitioned by the funding time (funding_time_ns) and keyed on the venue's funding id with
-- it: a payment read twice (each poll re-reads the last funding time) is recorded once. Money,
-- rates and sizes are NUMERIC, exactly the wire's decimal strings.

SELECT tm_create_timed_table('funding', 'funding_time_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    funding_id text NOT NULL CHECK (funding_id <> ''),
    funding_time_ns bigint NOT NULL,
    symbol text NOT NULL CHECK (symbol <> ''),
    asset text NOT NULL,
    amount numeric NOT NULL,
    rate numeric,
    position_size numeric,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, funding_id, funding_time_ns)
$$);

CREATE INDEX funding_symbol_time ON funding (venue, symbol, funding_time_ns);
