"""The inspector's engine core: execution intents, fills, order updates, marks, instrument facts
and timer wake-ups in; verdicts, order actions (place, cancel, amend, query), risk events and
state transitions out. Pure: time is given as `now_ns`, venue answers come in as events
(docs/inspector.md)."""
