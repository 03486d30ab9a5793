"""The gateway's typed config, its flags declared on it (trademesh.core.platform.config.flags): a light
module, so the CLI builds its parser without the gateway."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.platform.service.command import positive_int, seconds_at_most

# How long a lost instance is kept when nobody drains it: a day of TargetDown is heard; a week
# of it for a venue retired by kill -9 is noise (trademesh.gateway.registry.state).
LOST_S = 24 * 3600.0


def board_every_s(text: str) -> float:
    """--board-every-s: 0.2 to 60 seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not _MIN_EVERY_S <= value <= _MAX_EVERY_S:
        raise argparse.ArgumentTypeError(f"{text} is not {_MIN_EVERY_S:g}..{_MAX_EVERY_S:g} seconds")
    return value


_MIN_EVERY_S, _MAX_EVERY_S = 0.2, 60.0


__all__ = ["LOST_S", "BoardOptions", "GatewayConfig", "MuxLimits", "board_every_s"]


@dataclass(frozen=True)
class MuxLimits:
    # Live subscriptions of one session (a tab): Studio's pages need a handful each.
    max_subscriptions: int = setting(
        64, type=positive_int, flag="mux-max-subscriptions", help="live subscriptions per session"
    )
    # Open sessions of one API key (its Studio sessions and the key itself together): one per
    # tab or tool; a leaking client hits this instead of the gateway's memory.
    max_sessions_per_key: int = setting(
        32, type=positive_int, flag="mux-max-sessions-per-key", help="open sessions per API key"
    )
    # Frames waiting for a slow client, per session. A subscription whose next frame does not
    # fit is ended with RESOURCE_EXHAUSTED (trademesh.gateway.mux.session), so a stalled tab costs at
    # most this much memory and never slows the services it reads.
    max_queued_bytes: int = setting(
        4 * 1024 * 1024,
        type=positive_int,
        flag="mux-max-queued-bytes",
        shown="4 MiB",
        help="frames waiting for a slow client, per session",
    )
    # How often an open session checks its credential again: a revoked key or an expired
    # Studio session ends the stream (UNAUTHENTICATED) within this (plus the key refresh).
    recheck_s: float = 2.0

    def __post_init__(self) -> None:
        violations = [
            FieldViolation(name, f"{value} is not a positive number")
            for name, value in (
                ("max_subscriptions", self.max_subscriptions),
                ("max_sessions_per_key", self.max_sessions_per_key),
                ("max_queued_bytes", self.max_queued_bytes),
                ("recheck_s", self.recheck_s),
            )
            if not value > 0
        ]
        if violations:
            raise InvalidArgument(violations)


@dataclass(frozen=True)
class BoardOptions:
    every_s: float = setting(
        2.0,
        type=board_every_s,
        flag="board-every-s",
        help="how often the board checks every instance's health and metrics",
    )
    # Each health check's and each metrics read's deadline.
    check_timeout_s: float = 1.0
    # Alertmanager's base URL ("": no alerts).
    alertmanager_url: str = ""
    # Rounds run while someone looks (List, Watch, the MCP tool) and this long after: a gateway
    # nobody watches checks nothing.
    idle_s: float = 60.0


@dataclass(frozen=True)
class GatewayConfig:
    database_url: str
    host: str = "127.0.0.1"
    # The HTTP port (gRPC-web, Studio, /mcp, /metrics); the gRPC port is the server's (--grpc-port).
    port: int = 8081
    # Fixed routes: (name, services, "host:port").
    upstreams: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    studio_dir: Path | None = setting(
        None,
        type=Path,
        help="Studio's built files (default trademesh/gateway/studio/dist beside the gateway package: the "
        "checkout's build, or the one an installed wheel carries; docs/install.md)",
    )
    session_ttl_s: float = setting(
        12 * 3600.0,
        type=seconds_at_most(30 * 86400),
        shown="12 h",
        help="Studio session lifetime",
    )
    heartbeat_interval_s: float = setting(
        5.0, type=seconds_at_most(3600), help="how often registered instances heartbeat"
    )
    registry_ttl_s: float = setting(
        15.0,
        type=seconds_at_most(86400),
        help="an instance without a heartbeat for this long drops out",
    )
    # How long an instance gone silent without unregistering is kept as lost (RegistryState).
    registry_lost_s: float = setting(
        LOST_S,
        type=seconds_at_most(30 * 86400),
        help="an instance that dropped out without unregistering stays a Prometheus target (down, "
        "labelled lost) for this long unless one of its name registers again or it is unregistered "
        "(docs/gateway.md, Lost instances; default {default})",
    )
    # Share the registry with the gateway's other replicas through the bus (redis_url).
    shared_registry: bool = setting(
        False,
        switch=True,
        help="share the registry with the gateway's other replicas through the bus (--redis-url, "
        "else $REDIS_URL): each lists, routes and renews every replica's instances "
        "(docs/gateway.md, Replicas); default: this gateway's memory only",
    )
    allow_origins: frozenset[str] = frozenset()
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed. Empty: the
    # client is the TCP peer, whatever headers say (the login throttle counts per client).
    trusted_proxies: tuple[str, ...] = ()
    mux: MuxLimits = field(default_factory=MuxLimits)
    board: BoardOptions = field(default_factory=BoardOptions)
    grace_s: float = 5.0
    # The bus the services log to (LogHub's `logs` stream); None: Logs/Tail is FAILED_PRECONDITION.
    redis_url: str | None = field(default=None, repr=False)
