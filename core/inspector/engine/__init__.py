"""The inspector's engine core: execution intents, fills, order updates and marks in; verdicts,
order actions (place, cancel, query), risk events and state transitions out. Pure: time is
given as `now_ns`, venue answers come in as events (docs/inspector.md)."""
