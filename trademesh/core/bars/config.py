"""The bar service's typed config, its flags declared on it and on its watermark rules
(trademesh.core.platform.config.flags): a light module, so the CLI builds its parser without the service."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.names import market_pattern
from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.config.mesh import MeshConfig
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import positive_int, whole_number

if TYPE_CHECKING:
    from trademesh.core.platform.bus.consumer import ConsumerOptions


__all__ = ["BarsConfig"]


@dataclass(frozen=True)
class BarsConfig:
    redis_url: str
    mesh: MeshConfig = field(default_factory=MeshConfig)
    rules: WatermarkRules = field(default_factory=WatermarkRules)
    group: str = setting("bars", help="consumer group on the trade streams")
    # Each stream is read under `<consumer>:<stream>`, whichever replica holds it (its lease):
    # the next holder, or this one restarted, reads the entries left pending first, so entries
    # are applied in stream order (see docs/bars.md, "Replicas").
    consumer: str = setting(
        "bars",
        help="consumer name: each stream is read as <consumer>:<stream> by whichever replica holds "
        "it; the same for every replica of a group",
    )
    # A stream's lease: another replica takes a stream over within this after its holder died.
    lease_ttl_ms: int = setting(
        5000,
        type=positive_int,
        help="a stream's lease: replicas of a group divide the trade streams; another replica takes "
        "a stream over within this after its holder died",
    )
    pattern: str = setting(
        market_pattern(Channel.TRADES), flag="streams", help="trade streams to read, a Redis pattern"
    )
    batch: int = 500
    # After a read short of a batch, wait this long before the next (ConsumerOptions.linger_ms):
    # fewer, larger commits, each rewriting the changed symbols' checkpoint. Bars close a second
    # (--lateness-ms) after their end at the earliest, so this delays no bar that matters.
    linger_ms: float = setting(
        50.0,
        type=whole_number(0),
        help="after a bus read short of a batch, wait this long before the next: fewer, larger "
        "commits (default {default}; 0 reads at once)",
    )
    repair_timeout_s: float = setting(
        10.0,
        type=int,
        flag="repair-timeout-ms",
        scale=0.001,
        help="deadline of each GetCandles call made to repair a gap",
    )
    # The gateway's registry (gRPC host:port): the venues registered there are repaired from too.
    gateway: str | None = None
    source: str = setting(
        default_factory=lambda: f"bars/{socket.gethostname()}",
        shown="bars/<hostname>",
        help="name written into every bus entry (default: {default})",
    )

    def __post_init__(self) -> None:
        if not self.repair_timeout_s > 0:
            raise InvalidArgument.field(
                "repair-timeout-ms", f"must be positive, got {self.repair_timeout_s} s"
            )
        if not self.linger_ms >= 0:  # NaN too
            raise InvalidArgument.field("linger-ms", f"must be 0 or more, got {self.linger_ms}")
        if self.batch < 1:
            raise InvalidArgument.field("batch", f"must be at least 1, got {self.batch}")
        if self.lease_ttl_ms < 1:
            raise InvalidArgument.field("lease-ttl-ms", f"must be positive, got {self.lease_ttl_ms}")

    def consumer_options(self, stream: str) -> ConsumerOptions:
        """The consumer group on one trade stream, under the stream's own consumer name. The
        aggregator acknowledges every entry it is handed in the group write that commits its
        effect (CheckpointStore.commit), so the runner does not acknowledge them a second time
        (`handler_acks`)."""
        from trademesh.core.bars.shares import stream_consumer
        from trademesh.core.platform.bus.consumer import ConsumerOptions

        return ConsumerOptions(
            self.group,
            stream_consumer(self.consumer, stream),
            streams=(stream,),
            # Entries left idle this long are taken again, in order: those a replica read after it
            # lost the stream (trademesh.core.bars.aggregator waits for them), and this one's own
            # refused ones.
            claim_idle_ms=2 * self.lease_ttl_ms,
            batch=self.batch,
            linger_ms=self.linger_ms,
            handler_acks=True,
        )
