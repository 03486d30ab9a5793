-- The ledger's tables (trademesh/core/ledger/store.py): accounts, immutable transfers, running balances,
-- and the events posted (the idempotency record). Amounts are NUMERIC: exact, any scale.
-- Times are nanoseconds since the Unix epoch (bigint), as everywhere else.

CREATE TABLE ledger_accounts (
    id text PRIMARY KEY,
    ledger smallint NOT NULL,
    code integer NOT NULL,
    venue text NOT NULL,
    asset text NOT NULL,
    strategy text NOT NULL DEFAULT '',
    flags integer NOT NULL DEFAULT 0 CONSTRAINT ledger_accounts_known_flags CHECK (flags & ~3 = 0),
    created_ns bigint NOT NULL
);
CREATE INDEX ledger_accounts_strategy ON ledger_accounts (strategy, ledger);
CREATE INDEX ledger_accounts_venue ON ledger_accounts (venue, asset);

-- One row per transfer, never changed: a correction is a new transfer. The links trace it back
-- to what caused it; "" where a link does not apply (the indexes leave those rows out, so a
-- lookup repeats the index's `<> ''` to use it).
CREATE TABLE ledger_transfers (
    id text PRIMARY KEY,
    debit_account_id text NOT NULL REFERENCES ledger_accounts (id),
    credit_account_id text NOT NULL REFERENCES ledger_accounts (id),
    amount numeric NOT NULL CONSTRAINT ledger_transfers_amount_not_negative CHECK (amount >= 0),
    ledger smallint NOT NULL,
    code integer NOT NULL,
    asset text NOT NULL,
    ts_ns bigint NOT NULL,
    -- 0, or one of PENDING (1), POST_PENDING (2), VOID_PENDING (4)
    flags integer NOT NULL DEFAULT 0 CONSTRAINT ledger_transfers_known_flags CHECK (flags IN (0, 1, 2, 4)),
    -- POST_PENDING / VOID_PENDING: the pending transfer resolved (NULL otherwise)
    pending_id text REFERENCES ledger_transfers (id),
    event_id text NOT NULL,
    fill_id text NOT NULL DEFAULT '',
    order_id text NOT NULL DEFAULT '',
    client_order_id text NOT NULL DEFAULT '',
    intent_id text NOT NULL DEFAULT '',
    decision_id text NOT NULL DEFAULT '',
    signal_id text NOT NULL DEFAULT '',
    strategy_id text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_transfers_two_accounts CHECK (debit_account_id <> credit_account_id),
    CONSTRAINT ledger_transfers_pending_id CHECK ((flags IN (2, 4)) = (pending_id IS NOT NULL)),
    CONSTRAINT ledger_transfers_amount_positive CHECK (amount > 0 OR flags IN (2, 4))
);
CREATE INDEX ledger_transfers_event ON ledger_transfers (event_id);
CREATE INDEX ledger_transfers_time ON ledger_transfers (ts_ns, id);
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, ts_ns);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, ts_ns);
CREATE INDEX ledger_transfers_strategy ON ledger_transfers (strategy_id, ts_ns) WHERE strategy_id <> '';
-- A pending transfer is posted or voided once.
CREATE UNIQUE INDEX ledger_transfers_resolves_once ON ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;

-- The events posted: an event's chain is in ledger_transfers exactly when its row is here
-- (both are written in one transaction), so a redelivered event is recognised and skipped.
-- With the links its transfers share (their strategy may differ: a fill shared among the
-- strategies holding a position): the trace looks an id up here, one row per event, rather
-- than among the several transfers of each (a seventh of the index upkeep for a fill).
CREATE TABLE ledger_events (
    event_id text PRIMARY KEY,
    ts_ns bigint NOT NULL,
    transfers integer NOT NULL CHECK (transfers >= 0),
    posted_at timestamptz NOT NULL DEFAULT now(),
    fill_id text NOT NULL DEFAULT '',
    order_id text NOT NULL DEFAULT '',
    client_order_id text NOT NULL DEFAULT '',
    intent_id text NOT NULL DEFAULT '',
    decision_id text NOT NULL DEFAULT '',
    signal_id text NOT NULL DEFAULT ''
);
CREATE INDEX ledger_events_fill ON ledger_events (fill_id) WHERE fill_id <> '';
CREATE INDEX ledger_events_order ON ledger_events (order_id) WHERE order_id <> '';
CREATE INDEX ledger_events_client_order ON ledger_events (client_order_id) WHERE client_order_id <> '';
CREATE INDEX ledger_events_intent ON ledger_events (intent_id) WHERE intent_id <> '';
CREATE INDEX ledger_events_decision ON ledger_events (decision_id) WHERE decision_id <> '';
CREATE INDEX ledger_events_signal ON ledger_events (signal_id) WHERE signal_id <> '';

-- Transfers and events are history: nothing updates, deletes or truncates them.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % refused: the ledger''s history is immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'post a correcting transfer instead';
END;
$$;
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_events_immutable BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Each account's running balance, after TigerBeetle: posted and pending, each side. Derived
-- from ledger_transfers (trademesh/core/ledger/verify.py recomputes it); its row is created with the
-- account (zeros) and updated in the transaction that posts each transfer. The account's flags
-- are enforced here too, behind the engine's own checks.
CREATE TABLE ledger_balances (
    account_id text PRIMARY KEY REFERENCES ledger_accounts (id),
    debits_posted numeric NOT NULL DEFAULT 0,
    credits_posted numeric NOT NULL DEFAULT 0,
    debits_pending numeric NOT NULL DEFAULT 0,
    credits_pending numeric NOT NULL DEFAULT 0,
    flags integer NOT NULL DEFAULT 0,
    updated_ns bigint NOT NULL,
    CONSTRAINT ledger_balances_not_negative CHECK (
        debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0
    ),
    CONSTRAINT ledger_balances_debits_must_not_exceed_credits CHECK (
        flags & 1 = 0 OR debits_posted + debits_pending <= credits_posted
    ),
    CONSTRAINT ledger_balances_credits_must_not_exceed_debits CHECK (
        flags & 2 = 0 OR credits_posted + credits_pending <= debits_posted
    )
);
