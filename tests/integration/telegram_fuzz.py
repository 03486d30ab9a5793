"""Bot API updates for the Telegram bot's fuzz (tests/integration/test_fuzz.py), each with what
docs/telegram.md says becomes of it: a text message from the operators' chat is answered, once;
one from any other chat, an edit, a channel post, a photo, a button's callback or an update of
a shape the Bot API does not send is not. The texts are commands the bot knows and ones it does
not, with strategy ids real and bad (tests.integration.fuzz_pools), NUL, lone surrogates (JSON's
escapes carry them), very long text; the senders' names alike (they go into the reasons the
bot's actions record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.integration.fuzz_pools import LONE_SURROGATE, SURROGATE_MARK, Pools, hostile_text

__all__ = ["NESTED_UPDATES", "OPS", "STRANGER", "Update", "seeded", "updates"]

Json = dict[str, Any]
OPS, STRANGER = 4242, 999  # the chat the bot answers (--chat-ids), and one it must not
_COMMANDS = (
    "status", "pause", "resume", "closeall", "confirm", "start", "help", "", "STATUS", "Pause",
    "pause@trademesh_bot", "closeall@some_bot", "status@", "@", "/",
)  # fmt: skip
_SPACES = (" ", "  ", "\t", "\n", "\u00a0", "\u3000")
# Updates' fields (JSON text, for BotApiStandin.push_raw) nested thousands deep: such a getUpdates
# answer stopped the bot, and again after each restart (issue 57, item 12). None is answered.
NESTED_UPDATES = (
    '"message": {"chat": {"id": 4242}, "text": ' + "[" * 5000 + "]" * 5000 + "}",
    '"message": ' + '{"reply_to_message": ' * 3000 + "{}" + "}" * 3000,
)


@dataclass(frozen=True)
class Update:
    body: Json  # the update as the Bot API gives it, less its update_id (the stand-in numbers it)
    answered: bool  # what docs/telegram.md says: a reply to the operators' chat, or none at all


def _json_text(text: str) -> str:
    return text.replace(SURROGATE_MARK, LONE_SURROGATE)


def _texts(pools: Pools) -> st.SearchStrategy[str]:
    """Commands as an operator sends them (a real strategy paused or resumed, the status, a
    /closeall and its /confirm), commands askew (any of the names, any arguments), any text."""
    real, strategy = pools.string("strategy_id", good=True), pools.string("strategy_id")
    assert real is not None and strategy is not None, "the pools have no strategies"
    good = st.one_of(
        st.sampled_from(["/status", "/resume", "/closeall", "/confirm", "/status@trademesh_bot"]),
        st.builds("/{} {}".format, st.sampled_from(["pause", "resume"]), real),
    )
    argument = st.one_of(strategy, hostile_text(), st.text(max_size=20))
    askew = st.builds(
        lambda name, args, space: space.join([f"/{name}", *args]),
        st.sampled_from(_COMMANDS),
        st.lists(argument, max_size=3),
        st.sampled_from(_SPACES),
    )
    return st.one_of(good, good, askew, askew, hostile_text(), st.text(max_size=40)).map(_json_text)


def _sender() -> st.SearchStrategy[Any]:
    name = st.one_of(st.sampled_from(["alice", "ops"]), hostile_text().map(_json_text))
    person = st.fixed_dictionaries(
        {"id": st.integers(1, 2**40), "is_bot": st.booleans()},
        optional={"username": name, "first_name": name},
    )
    return st.one_of(person, person, person, st.just("alice"), st.none())


@st.composite
def _update(draw: st.DrawFn, pools: Pools) -> Update:
    chat = draw(st.sampled_from([OPS, OPS, OPS, STRANGER, -1001234567890, 0]))
    text = draw(_texts(pools))
    message: Json = {
        "message_id": draw(st.integers(1, 2**31)),
        "date": 1_800_000_000,
        "chat": {"id": chat, "type": draw(st.sampled_from(["private", "group", "supergroup"]))},
        "text": text,
    }
    sender = draw(_sender())
    if sender is not None:
        message["from"] = sender
    heard = chat == OPS
    shape = draw(st.sampled_from(["message"] * 6 + ["edit", "post", "photo", "callback", "odd"]))
    if shape == "message":
        return Update({"message": message}, heard)
    if shape == "edit":
        return Update({"edited_message": message}, False)
    if shape == "post":
        return Update({"channel_post": message}, False)
    if shape == "photo":
        photo = {k: v for k, v in message.items() if k != "text"}
        photo |= {"photo": [{"file_id": "f", "width": 1, "height": 1}], "caption": text}
        return Update({"message": photo}, False)
    if shape == "callback":
        return Update({"callback_query": {"id": "1", "from": sender, "data": text}}, False)
    odd: list[Any] = [
        text,
        None,
        [message],
        {**message, "chat": str(chat)},
        {**message, "chat": {"id": str(chat)}},
        {**message, "text": 12},
        {**message, "text": None},
    ]
    return Update({"message": draw(st.sampled_from(odd))}, False)


def updates(pools: Pools) -> st.SearchStrategy[Update]:
    return _update(pools)


def seeded(strategy: str) -> list[tuple[str, tuple[str, ...]]]:
    """Commands as an operator sends them, in an order where each meets its state (/confirm right
    after /closeall), each with how its reply begins when the command reached its tool: the
    tool's answer, or its refusal (`<command>: why`), never the list of commands."""
    return [
        ("/status", ("Risk: ", "status: ")),
        (f"/pause {strategy}", (f"{strategy}: ", "pause: ")),
        (f"/resume {strategy}", (f"{strategy}: ", "resume: ")),
        ("/closeall", ("Close every position",)),
        ("/confirm", ("Risk: ", "close_all: ")),
        ("/resume", ("Risk: ", "resume_risk: ")),
    ]
