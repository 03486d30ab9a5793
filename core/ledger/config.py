"""The ledger service's typed config (built by core.ledger.command from the flags)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from core.foundations.mesh_config import MeshConfig

__all__ = ["LedgerServiceConfig"]


@dataclass(frozen=True)
class LedgerServiceConfig:
    redis_url: str
    database_url: str
    # Venues given on the command line (they win over the gateway's registry).
    mesh: MeshConfig = field(default_factory=MeshConfig)
    gateway: str | None = None
    instance: str = "ledger"
    # The consumer group on exec.{<venue>}: every execution is posted once across restarts.
    group: str = "ledger"
    claim_idle_ms: int = 60_000
    # How often the perpetual venues are asked for funding payments.
    funding_every_s: float = 60.0
    # How often the leader verifies its books (core.ledger.audit); 0: only when asked (Verify).
    verify_every_s: float = 300.0
    # At the books' first start, each venue's balances are posted as opening deposits.
    opening_balances: bool = True
    # How long a fill whose order is not yet attributed waits for the inspector's ALLOW.
    attribution_wait_s: float = 1.0
    # The leader lease (leader.ledger.{<instance>}): only its holder acts (core.foundations.leader).
    leader_ttl_ms: int = 5_000
    source: str = field(default_factory=lambda: f"ledger/{socket.gethostname()}")
