"""`trademesh gateway`'s flags for the services board (argparse only: the CLI builds every
parser at start)."""

from __future__ import annotations

import argparse
import os
import urllib.parse

from trademesh.core.platform.config.env import ALERTMANAGER_URL
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.logs.redact import redact_url
from trademesh.gateway.config import BoardOptions

__all__ = ["add_board_arguments", "alertmanager_url", "board_options"]


def alertmanager_url(text: str) -> str:
    """http(s)://HOST[:PORT][/PATH], for argparse; without a trailing slash ("": none)."""
    if not text.strip():
        return ""
    parsed = urllib.parse.urlsplit(text.strip())
    try:
        parsed.port  # noqa: B018  # raises on a port that is not one
    except ValueError:
        raise argparse.ArgumentTypeError(f"{redact_url(text)} has a port that is not 1-65535") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise argparse.ArgumentTypeError(  # redacted: the URL may hold a password (user:password@)
            f"{redact_url(text)} is not an Alertmanager base URL (http://HOST:PORT, e.g. http://127.0.0.1:9093)"
        )
    return text.strip().rstrip("/")


def add_board_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("services board (trademesh.services.v1.Services, docs/operations.md)")
    group.add_argument(
        "--alertmanager-url",
        type=alertmanager_url,
        default=os.environ.get(ALERTMANAGER_URL, ""),
        metavar="URL",
        help=(
            "Alertmanager whose firing alerts the board shows (e.g. http://127.0.0.1:9093); "
            f"default ${ALERTMANAGER_URL}, else none"
        ),
    )
    add_flags(group, BoardOptions)


def board_options(args: argparse.Namespace) -> BoardOptions:
    return BoardOptions(alertmanager_url=args.alertmanager_url, **flag_values(args, BoardOptions))
