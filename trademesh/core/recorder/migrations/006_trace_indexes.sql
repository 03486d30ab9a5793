-- The trace (`trademesh trace <id>`, the ledger's Trace RPC) walks from any id to the others:
-- a signal's decisions and intents, an order's executions by its client order id, a fill by
-- its id. These indexes make each step one index lookup.

CREATE INDEX executions_client_order ON executions (client_order_id, ts_event_ns);
CREATE INDEX executions_fill ON executions (fill_id) WHERE fill_id IS NOT NULL;
CREATE INDEX decisions_signal ON decisions (signal_id);
CREATE INDEX intents_signal ON intents (signal_id);
CREATE INDEX intents_decision ON intents (decision_id);
