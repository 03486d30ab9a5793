"""The inspector service's typed config (built by trademesh.core.inspector.command from the flags)."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.config.mesh import MeshConfig
from trademesh.core.platform.service.command import (
    instance_name,
    leader_ttl_setting,
    positive_float,
    whole_number,
)

__all__ = ["DEFAULT_POLICIES", "InspectorServiceConfig", "deadman_ttl", "positive_decimal"]

# The policies `trademesh up` runs with when none are given: moderate limits for the sim.
DEFAULT_POLICIES = Path(__file__).with_name("default_policies.toml")


def positive_decimal(text: str) -> Decimal:
    """--starting-equity: a decimal above 0."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal above 0")
    return value


def deadman_ttl(text: str) -> int:
    """--deadman-ttl-ms: 0 (off) or 1000-3600000 ms."""
    value = whole_number(0)(text)
    if value and not 1_000 <= value <= 3_600_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 (off) or within 1000-3600000 ms")
    return value


@dataclass(frozen=True)
class InspectorServiceConfig:
    redis_url: str
    # Venues given on the command line (they win over the gateway's registry).
    mesh: MeshConfig = field(default_factory=MeshConfig)
    gateway: str | None = None
    # The policy set (TOML; reread when the file changes). None: the shipped defaults.
    policies: Path | None = setting(
        None, type=Path, help="the policy set (TOML, reread on change; default: the shipped one)"
    )
    # The account's equity at the journal's start, in the quote asset.
    starting_equity: Decimal = setting(
        Decimal(100_000),
        type=positive_decimal,
        help="the account's equity in the quote asset when the journal starts",
    )
    instance: str = setting("inspector", type=instance_name, help="this inspector's name")
    group: str = "inspector"
    claim_idle_ms: int = 60_000
    # Each venue's dead-man switch: a heartbeat every third of this; 0 turns it off.
    deadman_ttl_ms: int = setting(
        10_000,
        type=deadman_ttl,
        help="each venue cancels every order this long after the inspector's last heartbeat (0: off)",
    )
    reconcile_every_s: float = setting(10.0, type=positive_float, help="compare with the venues")
    mark_every_s: float = 1.0
    # Each leveraged venue's account (margins, liquidation prices) is read this often.
    margin_every_s: float = setting(
        1.0, type=positive_float, help="read each leveraged venue's margins and liquidation prices"
    )
    # The core's state is snapshotted into the journal every this many entries: a restart
    # replays at most about this many, and the entries before are trimmed.
    snapshot_every: int = setting(
        5_000,
        type=whole_number(10),
        help="snapshot the core into its journal every this many entries: a restart replays at most "
        "about this many",
    )
    # Where executions come from: "bus" (exec.{<venue>}, written by ingest: exactly once across
    # the inspector's restarts) or "venue" (each venue's StreamExecutions: no ingest needed, but
    # what happens while the inspector is down is found only by the reconciliation).
    executions: str = setting(
        "bus",
        choices=("bus", "venue"),
        help="read executions from the bus (exec.{<venue>}, by ingest) or straight from the venues",
    )
    # Emulate stop-losses even at venues that hold stop orders themselves.
    emulate_stops: bool = setting(
        False,
        switch=True,
        help="hold stop-losses here and send a market order when the last trade crosses them, even "
        "at venues with native stop orders",
    )
    # Deadline of each order call to a venue; past it the order is queried before any retry.
    venue_timeout_s: float = setting(2.0, type=positive_float, help="deadline of an order call")
    # The leader lease (leader.inspector.{<instance>}): only its holder acts
    # (trademesh.core.platform.replicas.leader).
    leader_ttl_ms: int = leader_ttl_setting("inspector")
    source: str = field(default_factory=lambda: f"inspector/{socket.gethostname()}")
