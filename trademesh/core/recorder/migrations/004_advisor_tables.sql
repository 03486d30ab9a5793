-- The advisor's decisions, execution intents and telemetry (streams `decisions`, `intents`,
-- `advisor.telemetry`): its audit log.
--
-- Partitioned by the engine's time of each (ts_decision_ns, ts_intent_ns, ts_ns) and keyed on
-- the id with that time (a partitioned table's unique keys must hold its partition column).
-- Queries go by time, strategy and symbol, hence the indexes. A decision's columns are what
-- lists filter and show; `decision` holds the whole trademesh.advisor.v1.Decision (every
-- stage's output, the LLM's trace), as the advisor's GetDecision answers it.

SELECT tm_create_timed_table('decisions', 'ts_decision_ns', $$
    decision_id text NOT NULL CHECK (decision_id <> ''),
    signal_id text NOT NULL,
    venue text NOT NULL,
    symbol text NOT NULL,
    strategy_id text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('intent', 'blocked')),
    -- The stage that blocked (context, quality, evaluation, ..., intent); NULL for an intent.
    blocked_stage text,
    block_reason text NOT NULL,
    -- The conviction before and after calibration; NULL when the stages did not run.
    conviction_raw numeric,
    conviction_calibrated numeric,
    regime text,
    -- llm or deterministic; NULL when synthesis did not run.
    synthesis text,
    model_version text NOT NULL,
    hypothetical boolean NOT NULL,
    ts_decision_ns bigint NOT NULL,
    decision bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (decision_id, ts_decision_ns)
$$);

CREATE INDEX decisions_time ON decisions (ts_decision_ns);
CREATE INDEX decisions_strategy_time ON decisions (strategy_id, ts_decision_ns);
CREATE INDEX decisions_symbol_time ON decisions (symbol, ts_decision_ns);

SELECT tm_create_timed_table('intents', 'ts_intent_ns', $$
    intent_id text NOT NULL CHECK (intent_id <> ''),
    decision_id text NOT NULL,
    signal_id text NOT NULL,
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    strategy_id text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    size numeric NOT NULL,
    entry_type text NOT NULL CHECK (entry_type IN ('limit', 'market')),
    entry_price numeric,
    stop_loss numeric,
    take_profit numeric,
    time_in_force text NOT NULL,
    expires_at_ns bigint NOT NULL,
    conviction numeric NOT NULL,
    risk_amount numeric,
    reduce_only boolean NOT NULL,
    ts_intent_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (intent_id, ts_intent_ns)
$$);

CREATE INDEX intents_strategy_time ON intents (strategy_id, ts_intent_ns);
CREATE INDEX intents_symbol_time ON intents (symbol, ts_intent_ns);

-- Every telemetry event: `kind` is the contract's (stage_started, quality_score, ...), `name`
-- the advisor core's (context_started, ...); `fields` its kind's fields (docs/advisor.md), as
-- text values. Events of no decision (portfolio_allocation) have decision_id ''.
SELECT tm_create_timed_table('advisor_telemetry', 'ts_ns', $$
    event_id text NOT NULL CHECK (event_id <> ''),
    kind text NOT NULL,
    name text NOT NULL,
    decision_id text NOT NULL,
    signal_id text NOT NULL,
    stage text,
    venue text NOT NULL,
    symbol text NOT NULL,
    strategy_id text NOT NULL,
    ts_ns bigint NOT NULL,
    value text NOT NULL,
    duration_ns bigint NOT NULL,
    model text NOT NULL,
    detail text NOT NULL,
    fields jsonb NOT NULL CHECK (jsonb_typeof(fields) = 'object'),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (event_id, ts_ns)
$$);

CREATE INDEX advisor_telemetry_decision ON advisor_telemetry (decision_id, ts_ns);
CREATE INDEX advisor_telemetry_kind_time ON advisor_telemetry (kind, ts_ns);
CREATE INDEX advisor_telemetry_strategy_time ON advisor_telemetry (strategy_id, ts_ns);
CREATE INDEX advisor_telemetry_symbol_time ON advisor_telemetry (symbol, ts_ns);
