"""The recorder's typed config, its flags declared on it (trademesh.core.platform.config.flags): a light
module, so the CLI builds its parser without the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from trademesh.core.platform.bus.names import (
    ACCOUNT_STREAMS,
    ADVISOR_TELEMETRY,
    BAR_STREAMS,
    DECISIONS,
    EXECUTION_STREAMS,
    FUNDING_STREAMS,
    INSPECTOR_JOURNALS,
    INTENTS,
    MARKET_STREAMS,
    POSITION_REQUESTS,
    REGIME_STREAMS,
    SCREEN_STREAMS,
    SIGNALS,
    SUPERVISOR_AUDIT,
)
from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.service.command import positive_float, positive_int, whole_number

if TYPE_CHECKING:
    from trademesh.core.platform.bus.consumer import ConsumerOptions


__all__ = ["RecorderConfig"]


@dataclass(frozen=True)
class RecorderConfig:
    database_url: str
    redis_url: str
    # Whole days of data to keep; 0 keeps everything.
    retention_days: int = setting(
        0,
        type=whole_number(0),
        help="drop whole days of data older than this many days; 0 keeps everything",
    )
    # Entries read per stream per batch (each entry holds many events).
    batch: int = setting(
        500,
        type=positive_int,
        help="bus entries per stream per transaction (each holds many events; default {default})",
    )
    consumer: str = "recorder"
    group: str = setting(
        "recorder",
        help="consumer group (default {default}); a recorder writing to another database needs its own",
    )
    # Streams matched by pattern (found as they appear) and streams by name (their group is
    # made at start, with the stream if need be, so nothing published before is missed).
    patterns: tuple[str, ...] = (
        MARKET_STREAMS,
        BAR_STREAMS,
        EXECUTION_STREAMS,
        FUNDING_STREAMS,
        INSPECTOR_JOURNALS,
        REGIME_STREAMS,
        SCREEN_STREAMS,
        ACCOUNT_STREAMS,
    )
    streams: tuple[str, ...] = (
        SIGNALS,
        POSITION_REQUESTS,
        DECISIONS,
        INTENTS,
        ADVISOR_TELEMETRY,
        SUPERVISOR_AUDIT,
    )
    # How long an entry sits unacknowledged before it is retried, by whichever replica looks first
    # (docs/recorder.md, "Replicas"): a killed replica's rows wait this to 1.5 times this. A full
    # batch (500 entries, 50,000 rows) was written in 0.25 s here, 1-2 s at the slowest rates
    # measured on a loaded machine: a live replica's batch is not taken from it, and were it
    # taken, the rows are keyed (written twice, kept once).
    claim_idle_ms: int = setting(
        5_000,
        type=positive_int,
        help="retry an entry left unacknowledged this long (one that failed, or one a killed "
        "replica had read: its rows are recorded that much later; default {default})",
    )
    max_deliveries: int = setting(
        5, type=positive_int, help="dead-letter an entry after this many failed deliveries"
    )
    # After a read short of a batch, wait before the next (ConsumerOptions.linger_ms, linger_wait;
    # docs/recorder.md, "Latency and batching").
    linger_ms: float = setting(
        10.0,
        type=whole_number(0),
        help="after a bus read short of a batch, wait this long before the next: fewer, larger "
        "transactions while data keeps coming, each entry later by at most that (default {default}; 0: none)",
    )
    # How often partitions ahead and retention are checked.
    maintenance_s: float = setting(
        300.0,
        type=positive_float,
        help="how often to create coming partitions and apply retention",
    )
    # Days after today whose partitions exist before any row needs them.
    days_ahead: int = 2

    def consumer_options(self) -> ConsumerOptions:
        from trademesh.core.platform.bus.consumer import ConsumerOptions

        return ConsumerOptions(
            group=self.group,
            consumer=self.consumer,
            streams=self.streams,
            patterns=self.patterns,
            batch=self.batch,
            claim_idle_ms=self.claim_idle_ms,
            max_deliveries=self.max_deliveries,
            linger_ms=self.linger_ms,
        )
