"""What the inspector notifies (trademesh.core.inspector.notify): the events an operator must hear of, in
words and as JSON; a half-set Telegram target is a start-up error naming the missing variable."""

from __future__ import annotations

import pytest

from trademesh.core.inspector.notify import as_json, notifier_from_env, text_of, wanted
from trademesh.core.platform.config.env import TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID
from trademesh.core.platform.errors import InvalidArgument
from trademesh.risk.v1 import inspector_pb2 as rk


def event(action: int = rk.RISK_ACTION_NOTICE, policy: str = "legacy") -> rk.RiskEvent:
    return rk.RiskEvent(
        ts_ns=1, action=action, policy=policy, reason="a position found at start", venue="sim",  # type: ignore[arg-type]
        symbol="BTC/USDT", values=[rk.Value(name="size", value="0.02")],
    )  # fmt: skip


def test_only_what_an_operator_must_hear_of_is_sent() -> None:
    assert wanted(event()) and wanted(event(policy="reconcile.position"))
    assert wanted(event(rk.RISK_ACTION_STAND_DOWN, "loss.max_drawdown"))
    assert wanted(event(rk.RISK_ACTION_CLOSE_ALL, "operator"))
    assert not wanted(event(rk.RISK_ACTION_ALLOW, "")) and not wanted(
        event(rk.RISK_ACTION_BLOCK, "orders.max_open")
    )
    assert not wanted(event(policy="orders.unknown"))


def test_the_event_in_words_and_as_json() -> None:
    text = text_of(event())
    assert text.splitlines() == [
        "trademesh inspector: notice legacy", "sim BTC/USDT", "a position found at start", "size 0.02",
    ]  # fmt: skip
    assert as_json(event())["values"] == {"size": "0.02"} and as_json(event())["action"] == "notice"


@pytest.mark.parametrize(
    ("given", "missing"), [(TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID), (TELEGRAM_CHAT_ID, TELEGRAM_BOT_TOKEN)]
)
def test_half_a_telegram_target_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    monkeypatch.delenv(missing, raising=False)
    monkeypatch.setenv(given, "42")  # a token, and a chat id as the chat's is checked
    with pytest.raises(InvalidArgument) as caught:
        notifier_from_env()
    assert [v.field for v in caught.value.violations] == [missing]
