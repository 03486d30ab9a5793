"""The Telegram bot's typed config, its flags declared on it (trademesh.core.platform.config.flags): a
light module, so the CLI builds its parser without the bot."""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import whole_number

__all__ = ["TelegramConfig"]


@dataclass(frozen=True)
class TelegramConfig:
    gateway_url: str
    api_key: str
    bot_token: str
    chats: frozenset[int]
    base_url: str = "https://api.telegram.org"
    poll_s: int = setting(
        25,
        type=whole_number(0),
        help="seconds getUpdates waits for a message (long polling, default {default})",
    )

    def __post_init__(self) -> None:
        if not self.chats:
            raise InvalidArgument.field("chat-ids", "no chat allowed: give the operators' chat ids")
        if not 0 <= self.poll_s <= 50:
            raise InvalidArgument.field("poll-s", f"{self.poll_s} is not in 0..50 seconds")
