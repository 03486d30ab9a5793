-- Every inspector instance's journal (streams `inspector.journal.<instance>`): each input of its
-- risk core, in the order it took them, as the core took it (its time `now_ns`, the entry whole
-- in `entry`, a risk.v1.JournalEntry). The journal on the bus is what restarts the inspector;
-- this copy is for audit and for a backtest of a recorded session, which hears its executions
-- when the live inspector heard them (trademesh/core/backtest/twins.py, `latency = "recorded"`).
--
-- Partitioned by now_ns and keyed on the stream entry's id (its milliseconds and sequence) with
-- that time: an entry recorded twice is recorded once. `input` is the entry's kind (fill,
-- order_update, intent, mark, ...); `venue` and `client_order_id` are the ones it names, ''
-- when it names none.

SELECT tm_create_timed_table('inspector_journal', 'now_ns', $$
    instance text NOT NULL CHECK (instance <> ''),
    entry_ms bigint NOT NULL,
    entry_seq bigint NOT NULL,
    now_ns bigint NOT NULL,
    input text NOT NULL CHECK (input <> ''),
    venue text NOT NULL,
    client_order_id text NOT NULL,
    entry bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (instance, entry_ms, entry_seq, now_ns)
$$);

CREATE INDEX inspector_journal_venue_time ON inspector_journal (venue, now_ns);
