"""The bot's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["COMMANDS", "IGNORED", "POLL_ERRORS"]

COMMANDS = Counter(
    "trademesh_telegram_commands_total",
    "Commands heard from allowed chats, by command and outcome (done, refused, unavailable, said).",
    ["command", "outcome"],
)
IGNORED = Counter(
    "trademesh_telegram_ignored_total",
    "Messages from chats the operator did not allow: never answered.",
)
POLL_ERRORS = Counter(
    "trademesh_telegram_poll_errors_total",
    "getUpdates calls that failed (the Bot API away, a bad token): retried with backoff.",
)
