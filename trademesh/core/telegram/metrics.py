"""The bot's Prometheus metrics. Every command's outcomes exist from the start (at 0): a
dashboard's rate has a series before the first command."""

from __future__ import annotations

from prometheus_client import Counter

from trademesh.core.telegram.commands import CommandKind

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

# What app.py counts: an action's outcome, and "said" (a reply without an action: help, a
# confirmation asked for, a refusal by the conversation itself) under the command "none".
for _kind in CommandKind:
    for _outcome in ("done", "refused", "unavailable"):
        COMMANDS.labels(_kind.value, _outcome)
COMMANDS.labels("none", "said")
