"""Overwatch's typed config, its flags declared on it (trademesh.core.platform.config.flags): a light
module, so the CLI builds its parser without the service."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.config.flags import argument_type, setting
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import leader_ttl_setting, positive_float, whole_number

if TYPE_CHECKING:
    from trademesh.core.domain.regime import ClassifierConfig
    from trademesh.core.platform.bus.publisher import Retention

__all__ = ["OverwatchAppConfig"]


def _classifier() -> ClassifierConfig:
    from trademesh.core.domain.regime import ClassifierConfig

    return ClassifierConfig()


def _retention() -> Retention:
    # regimes.<timeframe>'s MAXLEN: changes are rare (about one per 50 bars per market on the
    # sim), so a week of one entry a second is more than any consumer's outage.
    from trademesh.core.platform.bus.publisher import Retention

    return Retention(1.0, 7 * 24 * 60)


@dataclass(frozen=True)
class OverwatchAppConfig:
    redis_url: str
    # 1m by default: the timeframe the bench measured the classifier on (docs/overwatch.md) and
    # the advisor's context reads (trademesh.core.advisor.config.MESH_TIMEFRAME), so both see one regime.
    timeframe: Timeframe = setting(
        Timeframe.M1,
        type=argument_type(Timeframe.from_label),
        help="the bars read (bars.{<venue>}.<timeframe>), one regime per market on them: 1s 1m 5m 15m "
        "1h 4h 1d 1w (default {default}: the bars the classifier was measured on and the advisor reads)",
    )
    classifier: ClassifierConfig = field(default_factory=_classifier)
    max_markets: int = setting(
        10_000, type=whole_number(1), help="markets tracked at once; a new one past it is refused"
    )
    discover_s: float = setting(5.0, type=positive_float, help="seconds between looks for new bar streams")
    batch: int = 500  # entries read per stream per read
    queue_size: int = setting(
        1000,
        type=whole_number(1),
        help="changes queued per StreamRegimes call before a slow one is ended",
    )
    retention: Retention = field(default_factory=_retention)
    source: str = setting(
        default_factory=lambda: f"overwatch/{socket.gethostname()}",
        shown="overwatch/<hostname>",
        help="name written into every bus entry (default: {default})",
    )
    # The gateway's registry (gRPC address; $TRADEMESH_GATEWAY): where StreamOverview finds the
    # services it reads, and whose history the markets are warmed from first
    # (trademesh.core.overwatch.history_seed). None: the overview has the board alone, every other part
    # unavailable, and the markets warm from the streams alone.
    gateway: str | None = None
    overview_every_s: float = setting(
        1.0,
        type=positive_float,
        help="seconds between StreamOverview's messages (default {default}; the services read through "
        "the gateway's registry at $TRADEMESH_GATEWAY)",
    )
    leader_ttl_ms: int = leader_ttl_setting("overwatch")

    def __post_init__(self) -> None:
        if not 0.1 <= self.overview_every_s <= 60:
            raise InvalidArgument.field("overview-every-s", f"{self.overview_every_s} is not in 0.1..60 s")
        if not self.discover_s > 0:
            raise InvalidArgument.field("discover-s", f"must be positive, got {self.discover_s}")
        for name in ("batch", "queue_size"):
            if getattr(self, name) < 1:
                raise InvalidArgument.field(
                    name.replace("_", "-"), f"must be at least 1, got {getattr(self, name)}"
                )
