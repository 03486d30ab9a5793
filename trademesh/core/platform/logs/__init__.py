"""Logs: one line per record to stderr, credentials redacted, and LogHub's stream on the bus."""
