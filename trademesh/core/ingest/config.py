"""Ingest's typed config, its flags declared on it (trademesh.core.platform.config.flags): a light module,
so the CLI builds its parser without the service."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.config.mesh import MeshConfig
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import positive_int, seconds_at_most


def seconds_or_off(text: str) -> float:
    """argparse type: 0 (not read), or seconds up to a day."""
    return 0.0 if text.strip() in ("0", "0.0") else seconds_at_most(86_400)(text)


__all__ = ["IngestConfig", "seconds_or_off"]


@dataclass(frozen=True)
class IngestConfig:
    mesh: MeshConfig
    redis_url: str
    # Written into every bus entry: who published it.
    source: str = setting(
        default_factory=lambda: f"ingest/{socket.gethostname()}",
        shown="ingest/<hostname>",
        help="name written into every bus entry (default: {default})",
    )
    # Bus entries held while Redis is slow or away before venues are paused.
    max_queued: int = setting(
        20_000,
        type=positive_int,
        help="bus entries held while Redis is slow or away before venues are paused",
    )
    # Follow every venue's executions into exec.{<venue>} too.
    executions: bool = setting(
        True,
        switch=True,
        help="do not follow the venues' executions into exec.{<venue>} (followed by default)",
    )
    # Read every venue's funding payments into funding.{<venue>} this often (0: not read).
    funding_every_s: float = setting(
        60.0,
        type=seconds_or_off,
        help="read each venue's funding payments (with their rates) into funding.{<venue>} this "
        "often (default {default}; 0: not read)",
    )
    # Read every venue's instrument list (ListInstruments) this often, its changes published on
    # md.{<venue>}.instruments (0: not read).
    instruments_every_s: float = setting(
        60.0,
        type=seconds_or_off,
        help="read each venue's instrument list (ListInstruments) this often and publish its "
        "listings, delistings and changed trading rules on md.{<venue>}.instruments (default {default}; "
        "0: not read)",
    )
    # Follow every venue's account (StreamAccount: balances and positions) into account.{<venue>}.
    account: bool = setting(
        True,
        switch=True,
        help="do not follow the venues' accounts (StreamAccount: balances and positions) into "
        "account.{<venue>} (followed by default)",
    )
    # The gateway's registry (gRPC host:port): every venue registered there is followed too.
    gateway: str | None = None
    # How often the registry is read (a venue that registers is followed within this, plus its start).
    discover_every_s: float = 1.0
    # A venue's lease (trademesh.core.ingest.shares): a replica killed with -9 has its venues taken over
    # within this; renewed every third of it.
    lease_ttl_ms: int = setting(
        5000,
        type=positive_int,
        help="a venue's lease: another replica takes over a venue within this after its holder died",
    )

    def __post_init__(self) -> None:
        if not self.mesh.venues and self.gateway is None:
            raise InvalidArgument.field(
                "venue",
                "no venues to follow: give --venue NAME=HOST:PORT, a mesh config, "
                "or the gateway whose registry lists them (TRADEMESH_GATEWAY)",
            )
        if self.max_queued < 1:
            raise InvalidArgument.field("max-queued", f"must be at least 1, got {self.max_queued}")
        if not 0 <= self.funding_every_s <= 86_400:
            raise InvalidArgument.field(
                "funding-every-s", f"must be between 0 and 86400, got {self.funding_every_s}"
            )
        if not 0 <= self.instruments_every_s <= 86_400:
            raise InvalidArgument.field(
                "instruments-every-s", f"must be between 0 and 86400, got {self.instruments_every_s}"
            )
        if self.lease_ttl_ms < 300:
            raise InvalidArgument.field("lease-ttl-ms", f"must be at least 300, got {self.lease_ttl_ms}")
