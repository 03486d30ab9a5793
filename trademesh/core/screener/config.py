"""The Screener's typed config, its flags declared on it (trademesh.core.platform.config.flags): a light
module, so the CLI builds its parser without the service."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import whole_number
from trademesh.core.screener.screen_file import SCREENS_DIR

if TYPE_CHECKING:
    from trademesh.core.platform.bus.publisher import Retention

__all__ = ["ScreenerAppConfig"]


def _retention() -> Retention:
    # screens.<name>'s MAXLEN: a result per cadence (a minute or more for the shipped screens);
    # the floor of 1000 entries is most of a day of them.
    from trademesh.core.platform.bus.publisher import Retention

    return Retention(1 / 60, 24 * 60)


@dataclass(frozen=True)
class ScreenerAppConfig:
    redis_url: str
    screens_dir: Path = setting(
        SCREENS_DIR,
        type=Path,
        flag="screens",
        shown="the shipped trademesh/core/screener/screens/",
        help="the directory of screens (*.toml, docs/screener.md) to evaluate (default: {default})",
    )
    batch: int = 500  # entries read per stream per read
    queue_size: int = setting(
        100, type=whole_number(1), help="results queued per StreamResults call before a slow one is ended"
    )
    retention: Retention = field(default_factory=_retention)
    source: str = setting(
        default_factory=lambda: f"screener/{socket.gethostname()}",
        shown="screener/<hostname>",
        help="name written into every bus entry (default: {default})",
    )
    # The time the screens are evaluated at (ns since the epoch): injected, so a test can move it.
    clock: Callable[[], int] = time.time_ns
    # Where the screen venues are, for their tickers at once (trademesh.core.screener.prices): the gateway's
    # gRPC address (TRADEMESH_GATEWAY) and the venues given (--venue NAME=HOST:PORT). The windows
    # are seeded from the history the gateway serves too (trademesh.core.screener.history_seed).
    gateway: str | None = None
    venues: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("batch", "queue_size"):
            if getattr(self, name) < 1:
                raise InvalidArgument.field(
                    name.replace("_", "-"), f"must be at least 1, got {getattr(self, name)}"
                )
