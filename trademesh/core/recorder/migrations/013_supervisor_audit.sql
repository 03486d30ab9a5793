-- The Supervisor's audit trail (stream `supervisor.audit`, bus.v1.SupervisorAudit): one row per
-- entry, as the Supervisor kept it (docs/supervisor.md): every observation, prompt, tool call,
-- answer, proposal, refusal, approval, rejection, action and outcome.
--
-- Partitioned by the entry's time and keyed on its id (the Supervisor's book and a count: unique
-- across its runs), so an entry published twice (a retry) is recorded once. `trademesh trace
-- <proposal id>` reads a proposal's entries here (the proposal id index).

SELECT tm_create_timed_table('supervisor_audit', 'ts_ns', $$
    id text NOT NULL CHECK (id <> ''),
    ts_ns bigint NOT NULL,
    kind text NOT NULL CHECK (kind <> ''),
    proposal_id text NOT NULL,
    detail text NOT NULL,
    who text NOT NULL,
    ts_publish_ns bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (id, ts_ns)
$$);

CREATE INDEX supervisor_audit_proposal ON supervisor_audit (proposal_id, ts_ns) WHERE proposal_id <> '';
