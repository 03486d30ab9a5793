-- Overwatch's regime changes (streams `regimes.<timeframe>`, bus.v1.RegimeChanges): one row per
-- change of a market's regime, as Overwatch published it (docs/overwatch.md).
--
-- Partitioned by the close time of the bar that confirmed the change (at_ns: the time Overwatch
-- was given with that bar) and keyed on the market with it: a market changes at most once per
-- bar, so a change published twice (a retry, or a second Overwatch on the same bars) is
-- recorded once, the first one kept. The classifier's figures are double precision, exactly
-- the wire's doubles (they are indicator readings, not money).

SELECT tm_create_timed_table('regime_changes', 'at_ns', $$
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    timeframe text NOT NULL CHECK (timeframe <> ''),
    at_ns bigint NOT NULL,
    -- open time of the confirming bar, and of the new regime's first bar
    at_bar_ns bigint NOT NULL,
    since_ns bigint NOT NULL,
    previous text NOT NULL CHECK (previous IN
        ('unknown', 'trend_up', 'trend_down', 'range', 'high_volatility', 'thin_liquidity')),
    regime text NOT NULL CHECK (regime IN
        ('unknown', 'trend_up', 'trend_down', 'range', 'high_volatility', 'thin_liquidity')),
    adx double precision NOT NULL,
    di_plus double precision NOT NULL,
    di_minus double precision NOT NULL,
    vol_ratio double precision NOT NULL,
    volume_ratio double precision NOT NULL,
    ts_publish_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (venue, symbol, timeframe, at_ns)
$$);

-- "Which markets were trending up last week": by regime and time.
CREATE INDEX regime_changes_regime_time ON regime_changes (regime, at_ns);
