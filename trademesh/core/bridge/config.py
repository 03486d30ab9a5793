"""The bridge's config: a light module, so the CLI builds its parser without the service."""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import positive_float, positive_int, whole_number

__all__ = ["BridgeConfig"]


@dataclass(frozen=True)
class BridgeConfig:
    redis_url: str
    # The bridge's consumer group. Every replica needs its own: a group shares its entries out
    # among its consumers, and each bridge must see every event.
    group: str = setting(
        "bridge",
        help="consumer group on the bus; every bridge replica needs its own: {hostname} in it is "
        "replaced by this machine's host name, e.g. bridge-{hostname}",
    )
    # Per subscriber: messages queued before its overflow policy applies.
    queue_batches: int = setting(
        256, type=positive_int, help="messages queued per subscriber before it is conflated or disconnected"
    )
    # How often to look for new streams (a venue that starts publishing).
    discover_s: float = setting(2.0, type=positive_float, help="seconds between looks for new bus streams")
    # At start, how far back (in entries per book stream) to look for the books' latest snapshots.
    lookback_entries: int = setting(
        100_000,
        type=positive_int,
        help="at start, entries per book stream to look back for the latest snapshots",
    )
    # After a bus read short of a batch, wait this long before the next (ConsumerOptions.linger_ms):
    # fewer reads, each a round to the subscribers, at the cost of up to this much more latency.
    linger_ms: float = setting(
        0.0,
        type=whole_number(0),
        help="after a bus read short of a batch, wait this long before the next: fewer reads, more latency",
    )

    def __post_init__(self) -> None:
        if not self.linger_ms >= 0:  # NaN too
            raise InvalidArgument.field("linger-ms", f"must be 0 or more, got {self.linger_ms}")
        for name in ("queue_batches", "lookback_entries"):
            if getattr(self, name) < 1:
                raise InvalidArgument.field(
                    name.replace("_", "-"), f"must be at least 1, got {getattr(self, name)}"
                )
        if not self.discover_s > 0:
            raise InvalidArgument.field("discover-s", f"must be positive, got {self.discover_s}")
        if not self.group or "{" in self.group or "}" in self.group:
            raise InvalidArgument.field(
                "group", f"must be a name ({{hostname}} the only placeholder), got {self.group!r}"
            )
