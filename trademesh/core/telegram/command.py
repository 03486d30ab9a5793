"""`trademesh telegram`: its flags, its config, its app (trademesh.core.platform.service.command).

The secrets come from the environment, never from flags: the Bot API token
(TRADEMESH_TELEGRAM_BOT_TOKEN, as the inspector's notices) and the bot's own API key
(TRADEMESH_TELEGRAM_API_KEY, made with `trademesh keys create telegram --scope read --scope trade`,
plus `--scope close_all` for /closeall).

`trademesh up` runs it only when it is configured: a bot token and the chats allowed set in up's
environment (it makes the bot's key itself: <data-dir>/telegram-key)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.platform.config.env import (
    TELEGRAM_API_KEY,
    TELEGRAM_BOT_TOKEN,
    TELEGRAM_CHAT_ID,
    TELEGRAM_COMMAND_CHAT_IDS,
    read_secret,
)
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import MeshView, ServiceCommand
from trademesh.core.platform.service.registry import LOCAL_GATEWAY_URL
from trademesh.core.telegram.config import TelegramConfig

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway-url", default=LOCAL_GATEWAY_URL,
        help=f"the gateway whose MCP tools the bot calls (default {LOCAL_GATEWAY_URL})",
    )  # fmt: skip
    parser.add_argument(
        "--chat-ids",
        help="the chats whose commands are answered, comma-separated (default: "
        "$TRADEMESH_TELEGRAM_COMMAND_CHAT_IDS, else the notices' $TRADEMESH_TELEGRAM_CHAT_ID)",
    )
    add_flags(parser, TelegramConfig)


def _chats(text: str, setting: str) -> frozenset[int]:
    from trademesh.core.platform.config.env import chat_id

    return frozenset(chat_id(part.strip(), setting) for part in text.split(","))


def _config(args: argparse.Namespace) -> TelegramConfig:
    from trademesh.core.platform.config.env import TELEGRAM_BASE_URL
    from trademesh.core.platform.errors import InvalidArgument
    from trademesh.core.platform.logs.redact import check_http_url

    token, key = read_secret(TELEGRAM_BOT_TOKEN), read_secret(TELEGRAM_API_KEY)
    if token is None or key is None:
        missing = TELEGRAM_BOT_TOKEN if token is None else TELEGRAM_API_KEY
        raise InvalidArgument.field(
            missing, "is not set: the bot needs its Bot API token and its own API key"
        )
    if args.chat_ids is not None:
        chats = _chats(args.chat_ids, "chat-ids")
    else:
        variable = TELEGRAM_COMMAND_CHAT_IDS if read_secret(TELEGRAM_COMMAND_CHAT_IDS) else TELEGRAM_CHAT_ID
        chats = _chats(read_secret(variable) or "", variable) if read_secret(variable) else frozenset()
    base = read_secret(TELEGRAM_BASE_URL) or TelegramConfig.base_url
    base = check_http_url(base, TELEGRAM_BASE_URL, shown=False)
    gateway = check_http_url(args.gateway_url, "gateway-url")
    return TelegramConfig(gateway, key, token, chats, base, **flag_values(args, TelegramConfig))


def _create(config: TelegramConfig) -> ServiceApp:
    from trademesh.core.telegram.app import TelegramApp

    return TelegramApp(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    """In `trademesh up`: the mesh's gateway (its key is made by up: <data-dir>/telegram-key)."""
    return ["--gateway-url", mesh.gateway_url] if mesh.gateway_url else []


def _left_out() -> str | None:
    """Why `trademesh up` does not start the bot: no bot token (most meshes: no bot), or no chat
    whose commands it may answer."""
    if read_secret(TELEGRAM_BOT_TOKEN) is None:
        return f"{TELEGRAM_BOT_TOKEN} is not set (docs/telegram.md)"
    if read_secret(TELEGRAM_COMMAND_CHAT_IDS) is None and read_secret(TELEGRAM_CHAT_ID) is None:
        return f"no chat allowed: set {TELEGRAM_COMMAND_CHAT_IDS} (or the notices' {TELEGRAM_CHAT_ID})"
    return None


COMMAND: ServiceCommand[TelegramConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    holds=(TELEGRAM_API_KEY,),
    left_out=_left_out,
    settings=(TelegramConfig,),
)
