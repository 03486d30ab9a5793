-- The Screener's results (streams `screens.<name>`, bus.v1.Envelope.screen_result): one row per
-- evaluation of a screen, as the Screener published it (docs/screener.md).
--
-- Partitioned by the evaluation's time (computed_ns: a multiple of the screen's cadence) and
-- keyed on the screen with it: a screen is evaluated once per instant, so a result published
-- twice (a retry, or two Screener replicas on the same bars) is recorded once, the first one
-- kept. `top` is the screen's symbols in rank order (a jsonb array: `top ? 'BTC/USDT'` asks
-- whether a symbol was among them); `ranked` every instrument that passed, best first, each
-- {rank, symbol, score, metrics, as_of_ns} with the metrics as the wire's decimal strings
-- (exact) and the score as its double.

SELECT tm_create_timed_table('screen_results', 'computed_ns', $$
    screen text NOT NULL CHECK (screen <> ''),
    venue text NOT NULL CHECK (venue <> ''),
    computed_ns bigint NOT NULL,
    top_n integer NOT NULL CHECK (top_n > 0),
    top jsonb NOT NULL,
    ranked jsonb NOT NULL,
    universe integer NOT NULL,
    left_out integer NOT NULL,
    missing jsonb NOT NULL,
    stale integer NOT NULL,
    filtered_out integer NOT NULL,
    -- the span of the ranked instruments' inputs' event times (0: nothing ranked)
    oldest_input_ns bigint NOT NULL,
    newest_input_ns bigint NOT NULL,
    ts_publish_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (screen, computed_ns)
$$);

-- "The screens of a venue over last week": by venue and time.
CREATE INDEX screen_results_venue_time ON screen_results (venue, computed_ns);
