"""The operators' Telegram conversation (trademesh.core.telegram.commands): who is answered, what each
command asks for, and /closeall's confirmation in injected time."""

from __future__ import annotations

import pytest

from trademesh.core.telegram.commands import CONFIRM_WINDOW_NS, Action, CommandKind, Conversation

T0 = 1_800_000_000_000_000_000
OPS = 4242


def chat() -> Conversation:
    return Conversation(frozenset({OPS}))


def test_a_chat_not_allowed_gets_no_answer_and_no_action() -> None:
    turn = chat().hear(999, "mallory", "/closeall", T0)
    assert turn.ignored and turn.reply == "" and turn.action is None
    c = chat()
    c.hear(999, "mallory", "/closeall", T0)
    assert c.hear(999, "mallory", "/confirm", T0 + 1).action is None


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("/status", Action(CommandKind.STATUS)),
        ("/status@trademesh_bot", Action(CommandKind.STATUS)),
        ("/pause trend", Action(CommandKind.PAUSE, "trend", "pause from Telegram by alice")),
        ("  /PAUSE   trend_v2  ", Action(CommandKind.PAUSE, "trend_v2", "pause from Telegram by alice")),
        ("/resume trend", Action(CommandKind.RESUME, "trend", "resume from Telegram by alice")),
        ("/resume", Action(CommandKind.RESUME_RISK, reason="resume from Telegram by alice")),
    ],
)
def test_each_command_asks_for_its_action(text: str, action: Action) -> None:
    turn = chat().hear(OPS, "alice", text, T0)
    assert (turn.action, turn.reply) == (action, "")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("hello", "Commands: /status"),
        ("/pause", "Not a command here: /pause"),
        ("/pause a b", "Not a command here: /pause …"),
        ("/pause ../../etc", "'../../etc' is not a strategy id"),
        ("/pause Trend", "'Trend' is not a strategy id"),
        ("/rm -rf", "Not a command here: /rm …"),
        ("/status now", "Not a command here: /status …"),
    ],
)
def test_anything_else_is_answered_with_what_the_bot_takes_and_no_action(text: str, said: str) -> None:
    turn = chat().hear(OPS, "alice", text, T0)
    assert turn.action is None and said in turn.reply, turn.reply


def test_closeall_acts_only_on_a_confirm_within_the_window_from_the_same_chat() -> None:
    c = chat()
    asked = c.hear(OPS, "alice", "/closeall", T0)
    assert asked.action is None and "/confirm" in asked.reply
    done = c.hear(OPS, "alice", "/confirm", T0 + CONFIRM_WINDOW_NS)
    assert done.action == Action(CommandKind.CLOSE_ALL, reason="closeall from Telegram by alice")
    assert c.hear(OPS, "alice", "/confirm", T0 + CONFIRM_WINDOW_NS + 1).action is None  # used up


def test_a_late_or_interrupted_confirm_closes_nothing() -> None:
    c = chat()
    c.hear(OPS, "alice", "/closeall", T0)
    late = c.hear(OPS, "alice", "/confirm", T0 + CONFIRM_WINDOW_NS + 1)
    assert late.action is None and late.reply.startswith("Too late")
    c.hear(OPS, "alice", "/closeall", T0)
    c.hear(OPS, "alice", "/status", T0 + 1)  # anything else in between drops it
    assert c.hear(OPS, "alice", "/confirm", T0 + 2).reply.startswith("Nothing to confirm")
