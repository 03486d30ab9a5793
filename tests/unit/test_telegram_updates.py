"""What the bot hears in a Bot API update (trademesh.core.telegram.bot_api.Message.of): a text message, or
nothing; never an exception that would end its polling (the fuzz's odd updates once did)."""

from __future__ import annotations

from typing import Any

import pytest

from trademesh.core.telegram.bot_api import Message

_MESSAGE = {"message_id": 1, "chat": {"id": 4242, "type": "private"}, "from": {"id": 7, "username": "ops"}}


@pytest.mark.parametrize(
    "update",
    [
        {"message": "/status"},
        {"message": None},
        {"message": [{**_MESSAGE, "text": "/status"}]},
        {"message": {**_MESSAGE, "chat": "4242", "text": "/status"}},
        {"message": {**_MESSAGE, "chat": {"id": "4242"}, "text": "/status"}},
        {"message": {**_MESSAGE, "chat": {"id": True}, "text": "/status"}},
        {"message": {**_MESSAGE, "text": 12}},
        {"message": {**_MESSAGE, "caption": "/status", "photo": []}},
        {"edited_message": {**_MESSAGE, "text": "/status"}},
        {"channel_post": {**_MESSAGE, "text": "/status"}},
    ],
)
def test_an_update_that_is_no_text_message_of_the_bot_apis_shape_is_nothing_to_hear(
    update: dict[str, Any],
) -> None:
    assert Message.of({"update_id": 5, **update}) is None


def test_a_text_message_is_heard_with_its_sender_whatever_shape_the_sender_has() -> None:
    heard = Message.of({"update_id": 5, "message": {**_MESSAGE, "text": "/status"}})
    assert heard is not None and (heard.update_id, heard.chat, heard.who, heard.text) == (
        5,
        4242,
        "ops",
        "/status",
    )
    for sender, who in (
        ("ops", "someone"),
        (None, "someone"),
        ({"id": 7}, "7"),
        ({"first_name": "Al"}, "Al"),
    ):
        message = {**_MESSAGE, "from": sender, "text": "/status"}
        heard = Message.of({"update_id": 5, "message": message})
        assert heard is not None and heard.who == who, (sender, heard and heard.who)


def test_a_lone_surrogate_in_the_text_or_the_name_is_heard_as_a_question_mark() -> None:
    """JSON's escapes carry one; UTF-8 cannot: a reply quoting it could not be sent."""
    message = {**_MESSAGE, "from": {"username": "o\ud800ps"}, "text": "/pa\udfffuse trend"}
    heard = Message.of({"update_id": 5, "message": message})
    assert heard is not None and (heard.who, heard.text) == ("o?ps", "/pa?use trend")
