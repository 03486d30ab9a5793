"""The operators' Telegram conversation, a pure core: a message in (its chat, its text, the
time given), a reply and at most one action out. No I/O: the shell polls the Bot API, carries
the action out through the mesh's tools with its own key (so the bot can do what its key's
scope allows, no more), and sends the reply.

- Only the chats the operator lists are answered; any other chat gets no answer (a bot's name is
  public) and is counted.
- `/status`: the inspector's state, PnL and positions (the shell fills the reply in).
- `/pause STRATEGY`, `/resume STRATEGY`: the strategy's patches paused or activated on every
  detector; `/resume` alone: the inspector resumed after a stand-down.
- `/closeall`: nothing yet; the reply asks for `/confirm` from the same chat within
  CONFIRM_WINDOW_NS. `/confirm` then closes every position; a late `/confirm`, or one with no
  `/closeall` before it, does nothing and says so. Any other command in between drops the
  pending `/closeall`.
- A strategy name is checked for its shape here (the tools check that it exists); `@botname`
  after a command (Telegram's group form) is taken off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["CONFIRM_WINDOW_NS", "Action", "CommandKind", "Conversation", "Turn"]

CONFIRM_WINDOW_NS = 60 * 1_000_000_000
_STRATEGY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # as the tools take a strategy id
_HELP = (
    "Commands: /status, /pause STRATEGY, /resume STRATEGY, /resume (the inspector), /closeall (then /confirm)"
)


class CommandKind(StrEnum):
    STATUS = "status"
    PAUSE = "pause"
    RESUME = "resume"  # a strategy's patches
    RESUME_RISK = "resume_risk"  # the inspector, after a stand-down
    CLOSE_ALL = "close_all"


@dataclass(frozen=True)
class Action:
    kind: CommandKind
    strategy: str = ""
    reason: str = ""  # recorded with the action (the inspector's risk event)


@dataclass(frozen=True)
class Turn:
    """What one message gives: a reply to send (empty: none), and an action to carry out."""

    reply: str = ""
    action: Action | None = None
    ignored: bool = False  # from a chat not allowed


@dataclass
class Conversation:
    allowed: frozenset[int]
    _pending: dict[int, int] = field(default_factory=dict)  # chat -> /closeall's time

    def hear(self, chat: int, who: str, text: str, now_ns: int) -> Turn:
        if chat not in self.allowed:
            return Turn(ignored=True)
        words = text.strip().split()
        if not words or not words[0].startswith("/"):
            return Turn(_HELP)
        command, args = words[0][1:].split("@", 1)[0].lower(), words[1:]
        pending = self._pending.pop(chat, None)
        if command == "confirm":
            return self._confirm(pending, who, now_ns)
        if command == "closeall" and not args:
            self._pending[chat] = now_ns
            return Turn("Close every position on every venue? Send /confirm within 60 s.")
        return _simple(command, args, who)

    def _confirm(self, pending: int | None, who: str, now_ns: int) -> Turn:
        if pending is None:
            return Turn("Nothing to confirm: send /closeall first.")
        if now_ns - pending > CONFIRM_WINDOW_NS:
            return Turn("Too late: /closeall was more than 60 s ago. Send it again.")
        return Turn(action=Action(CommandKind.CLOSE_ALL, reason=f"closeall from Telegram by {who}"))


def _simple(command: str, args: list[str], who: str) -> Turn:
    if command == "status" and not args:
        return Turn(action=Action(CommandKind.STATUS))
    if command == "resume" and not args:
        return Turn(action=Action(CommandKind.RESUME_RISK, reason=f"resume from Telegram by {who}"))
    if command in ("pause", "resume") and len(args) == 1:
        if not _STRATEGY.fullmatch(args[0]):
            return Turn(f"{args[0][:64]!r} is not a strategy id (a-z 0-9 _ -, such as trend)")
        kind = CommandKind.PAUSE if command == "pause" else CommandKind.RESUME
        return Turn(action=Action(kind, args[0], f"{command} from Telegram by {who}"))
    return Turn(f"Not a command here: /{command[:32]}{' …' if args else ''}. {_HELP}")
