-- Backtest runs (trademesh/core/backtest/store.py): one row per run in backtest_runs, its results in the
-- children, deleted with it (ON DELETE CASCADE). Money and the fractions computed from money
-- are NUMERIC (exact, inserted from Decimal); ratios are double precision. Times are
-- nanoseconds since the Unix epoch (bigint), as everywhere else. `seq` is a row's position in
-- the run's own list, so a result reads back in the order it was made.

CREATE TABLE backtest_runs (
    run_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL DEFAULT 'running'
        CONSTRAINT backtest_runs_status CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
    config jsonb NOT NULL,
    start_ns bigint NOT NULL,
    end_ns bigint NOT NULL,
    events bigint CONSTRAINT backtest_runs_events CHECK (events >= 0),
    error text,
    finished_at timestamptz,
    CONSTRAINT backtest_runs_range CHECK (start_ns <= end_ns),
    CONSTRAINT backtest_runs_finished CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX backtest_runs_created ON backtest_runs (created_at DESC, run_id);

-- Each strategy's figures and the account's ("total"): trademesh.core.backtest.results.Metrics.
CREATE TABLE backtest_metrics (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    strategy text NOT NULL,
    total_return numeric NOT NULL,
    cagr double precision NOT NULL,
    sharpe double precision NOT NULL,
    sortino double precision NOT NULL,
    max_drawdown numeric NOT NULL,
    calmar double precision NOT NULL,
    win_rate double precision NOT NULL,
    profit_factor double precision,
    exposure double precision NOT NULL,
    turnover double precision NOT NULL,
    fees numeric NOT NULL,
    trades integer NOT NULL CONSTRAINT backtest_metrics_trades CHECK (trades >= 0),
    start_equity numeric NOT NULL,
    end_equity numeric NOT NULL,
    PRIMARY KEY (run_id, strategy)
);

-- Every fill, attributed to a strategy ("unattributed": no position's). fee < 0: a rebate.
CREATE TABLE backtest_fills (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    ts_ns bigint NOT NULL,
    strategy text NOT NULL,
    venue text NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL CONSTRAINT backtest_fills_side CHECK (side IN ('buy', 'sell')),
    price numeric NOT NULL CONSTRAINT backtest_fills_price CHECK (price > 0),
    size numeric NOT NULL CONSTRAINT backtest_fills_size CHECK (size > 0),
    fee numeric NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Every order update the replayed venue reported (core.model.Execution), in order.
CREATE TABLE backtest_orders (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    ts_ns bigint NOT NULL,
    client_order_id text NOT NULL,
    order_id text NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL CONSTRAINT backtest_orders_side CHECK (side IN ('buy', 'sell')),
    type text NOT NULL,
    status text NOT NULL,
    price numeric,
    size numeric NOT NULL CONSTRAINT backtest_orders_size CHECK (size >= 0),
    filled_size numeric NOT NULL,
    reason text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq),
    CONSTRAINT backtest_orders_filled CHECK (filled_size >= 0 AND filled_size <= size)
);

-- Positions opened and closed (trademesh.core.backtest.results.RoundTrip): pnl net of fees.
CREATE TABLE backtest_trips (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    strategy text NOT NULL,
    venue text NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL CONSTRAINT backtest_trips_side CHECK (side IN ('long', 'short')),
    opened_ns bigint NOT NULL,
    closed_ns bigint NOT NULL,
    size numeric NOT NULL CONSTRAINT backtest_trips_size CHECK (size > 0),
    entry_price numeric NOT NULL,
    exit_price numeric NOT NULL,
    fees numeric NOT NULL,
    pnl numeric NOT NULL,
    PRIMARY KEY (run_id, seq),
    CONSTRAINT backtest_trips_times CHECK (opened_ns <= closed_ns)
);

-- The equity curves: the account's ("total") and each strategy's; drawdown is the fraction
-- below the curve's running peak (trademesh.core.backtest.metrics.drawdowns).
CREATE TABLE backtest_equity (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    strategy text NOT NULL,
    seq integer NOT NULL,
    ts_ns bigint NOT NULL,
    equity numeric NOT NULL,
    exposure numeric NOT NULL CONSTRAINT backtest_equity_exposure CHECK (exposure >= 0),
    drawdown numeric NOT NULL,
    PRIMARY KEY (run_id, strategy, seq)
);

CREATE TABLE backtest_signals (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    signal_id text NOT NULL,
    ts_ns bigint NOT NULL,
    symbol text NOT NULL,
    direction text NOT NULL,
    conviction text NOT NULL,
    strategy_id text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The advisor's decisions; intent_id is set when the outcome is an intent.
CREATE TABLE backtest_decisions (
    run_id text NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq integer NOT NULL,
    decision_id text NOT NULL,
    signal_id text NOT NULL,
    outcome text NOT NULL,
    intent_id text,
    PRIMARY KEY (run_id, seq),
    CONSTRAINT backtest_decisions_intent CHECK ((outcome = 'intent') = (intent_id IS NOT NULL))
);
