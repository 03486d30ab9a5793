-- The accounts kept per instrument (positions, fees, PnL, margin) name their symbol; the
-- others have "". And what the ledger learns of orders from the inspector and the advisor
-- (trademesh/core/ledger/attribution.py): the intent, decision, signal and strategy each order was
-- placed for, and how far it has read their bus streams.

ALTER TABLE ledger_accounts ADD COLUMN symbol text NOT NULL DEFAULT '';
CREATE INDEX ledger_accounts_symbol ON ledger_accounts (venue, symbol) WHERE symbol <> '';

CREATE TABLE ledger_orders (
    client_order_id text PRIMARY KEY,
    venue text NOT NULL,
    symbol text NOT NULL,
    intent_id text NOT NULL,
    strategy_id text NOT NULL,
    decision_id text NOT NULL,
    signal_id text NOT NULL,
    -- The inspector's ALLOW risk event (its id on the bus stream `risk`) and time.
    risk_event_id text NOT NULL,
    ts_ns bigint NOT NULL
);
CREATE INDEX ledger_orders_intent ON ledger_orders (intent_id);
CREATE INDEX ledger_orders_signal ON ledger_orders (signal_id) WHERE signal_id <> '';

CREATE TABLE ledger_cursors (
    stream text PRIMARY KEY,
    last_id text NOT NULL
);
