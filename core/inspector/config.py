"""The inspector service's typed config (built by core.inspector.command from the flags)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from core.foundations.mesh_config import MeshConfig

__all__ = ["DEFAULT_POLICIES", "InspectorServiceConfig"]

# The policies `trademesh up` runs with when none are given: moderate limits for the sim.
DEFAULT_POLICIES = Path(__file__).with_name("default_policies.toml")


@dataclass(frozen=True)
class InspectorServiceConfig:
    redis_url: str
    # Venues given on the command line (they win over the gateway's registry).
    mesh: MeshConfig = field(default_factory=MeshConfig)
    gateway: str | None = None
    # The policy set (TOML; reread when the file changes). None: the shipped defaults.
    policies: Path | None = None
    # The account's equity at the journal's start, in the quote asset.
    starting_equity: Decimal = Decimal(100_000)
    instance: str = "inspector"
    group: str = "inspector"
    claim_idle_ms: int = 60_000
    # Each venue's dead-man switch: a heartbeat every third of this; 0 turns it off.
    deadman_ttl_ms: int = 10_000
    reconcile_every_s: float = 10.0
    mark_every_s: float = 1.0
    # Each leveraged venue's account (margins, liquidation prices) is read this often.
    margin_every_s: float = 1.0
    # The core's state is snapshotted into the journal every this many entries: a restart
    # replays at most about this many, and the entries before are trimmed.
    snapshot_every: int = 5_000
    # Where executions come from: "bus" (exec.{<venue>}, written by ingest: exactly once across
    # the inspector's restarts) or "venue" (each venue's StreamExecutions: no ingest needed, but
    # what happens while the inspector is down is found only by the reconciliation).
    executions: str = "bus"
    # Emulate stop-losses even at venues that hold stop orders themselves.
    emulate_stops: bool = False
    # Deadline of each order call to a venue; past it the order is queried before any retry.
    venue_timeout_s: float = 2.0
    # The leader lease (leader.inspector.{<instance>}): only its holder acts (core.foundations.leader).
    leader_ttl_ms: int = 5_000
    source: str = field(default_factory=lambda: f"inspector/{socket.gethostname()}")
