"""The ledger service's typed config (built by trademesh.core.ledger.command from the flags)."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.config.mesh import MeshConfig
from trademesh.core.platform.service.command import instance_name, leader_ttl_setting, positive_float

__all__ = ["LedgerServiceConfig", "verify_every"]


def verify_every(text: str) -> float:
    """--verify-every-s: 0 (off), or seconds between verifies: at least 1."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (seconds == 0 or 1 <= seconds <= 86_400):
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 (off) or 1 to 86400 seconds")
    return seconds


@dataclass(frozen=True)
class LedgerServiceConfig:
    redis_url: str
    database_url: str
    # Venues given on the command line (they win over the gateway's registry).
    mesh: MeshConfig = field(default_factory=MeshConfig)
    gateway: str | None = None
    instance: str = setting("ledger", type=instance_name, help="this ledger's name")
    # The consumer group on exec.{<venue>}: every execution is posted once across restarts.
    group: str = "ledger"
    claim_idle_ms: int = 60_000
    # How often the perpetual venues are asked for funding payments.
    funding_every_s: float = setting(
        60.0, type=positive_float, help="how often the perpetual venues are asked for funding payments"
    )
    # How often the leader verifies its books (trademesh.core.ledger.audit); 0: only when asked (Verify).
    verify_every_s: float = setting(
        300.0,
        type=verify_every,
        help="how often the leader verifies its books (balances against their transfers; the "
        "trademesh_ledger_verify_* gauges); 0: only when Ledger/Verify is called",
    )
    # At the books' first start, each venue's balances are posted as opening deposits.
    opening_balances: bool = setting(
        True,
        switch=True,
        help="at the books' first start, do not post the venues' balances as opening deposits",
    )
    # How long a fill whose order is not yet attributed waits for the inspector's ALLOW.
    attribution_wait_s: float = 1.0
    # The leader lease (leader.ledger.{<instance>}): only its holder acts
    # (trademesh.core.platform.replicas.leader).
    leader_ttl_ms: int = leader_ttl_setting("ledger")
    source: str = field(default_factory=lambda: f"ledger/{socket.gethostname()}")
