"""The detector's typed config (from `trademesh detector`'s flags, trademesh.core.detector.command)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.config.mesh import MeshConfig, check_address
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.platform.service.command import (
    instance_name,
    leader_ttl_setting,
    positive_float,
    positive_int,
    whole_number,
)

__all__ = ["EXAMPLES_DIR", "DetectorConfig", "example_strategies"]

# The strategies that ship (docs/detector.md, "Strategy files"): the demo runs them on the sim.
EXAMPLES_DIR = Path(__file__).resolve().parent / "strategies"
_INSTANCE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def example_strategies() -> tuple[Path, ...]:
    return tuple(sorted(EXAMPLES_DIR.glob("*.toml")))


@dataclass(frozen=True)
class DetectorConfig:
    # The venues whose market data the patches read (their MarketData streams, no bus between).
    mesh: MeshConfig
    redis_url: str
    # Where this instance keeps its patches (API edits survive a restart) and their change log.
    database_url: str
    # Strategy files loaded at start; each runs as one patch per venue and symbol.
    strategies: tuple[Path, ...] = ()
    # The instance's name: what it registers under with the gateway (several detectors, one
    # name each) and what its bus entries say wrote them.
    instance: str = setting("detector", type=instance_name, help="this detector's name with the gateway")
    tick_hz: float = setting(10.0, type=positive_float, help="clock ticks a second")
    # How long market data is held before the engine sees it, in event-time order
    # (trademesh.core.detector.runner): 0 gives the lowest latency; a hold longer than the venues'
    # delivery delay gives the backtest's signals exactly (docs/backtest-parity.md, "Parity with live").
    hold_ms: int = setting(
        0,
        type=whole_number(0),
        help="hold market data this long and feed it in event-time order, as a backtest does "
        "(default {default}: at once; docs/backtest.md)",
    )
    probe_rate_hz: float = setting(30.0, type=positive_float, help="updates a second per probe, at most 30")
    # A module step slower than this is flagged with its timing.
    module_budget_us: int = setting(
        1_000, type=positive_int, help="a module step slower than this is flagged"
    )
    source: str = field(default_factory=lambda: f"detector/{socket.gethostname()}")
    # The gateway's registry (gRPC host:port): the venues registered there are followed too, and
    # a strategy on a venue not (yet) in the mesh waits for it instead of failing the start.
    gateway: str | None = None
    # The leader lease (leader.detector.<instance>): of the processes of one instance only its
    # holder runs the patches and emits signals; the others stand by
    # (trademesh.core.platform.replicas.leader).
    leader_ttl_ms: int = leader_ttl_setting("detector")
    # The inspector whose risk state and positions the strategies hear (trademesh.core.detector.feedback):
    # this host:port, else the one registered with the gateway; none without either.
    inspector: str | None = setting(
        None,
        metavar="HOST:PORT",
        help="the inspector the strategies hear back from (default: the gateway's)",
    )
    feedback_every_ms: int = setting(
        1_000, type=positive_int, help="how often the inspector's risk state and positions are read"
    )

    def __post_init__(self) -> None:
        if not _INSTANCE.fullmatch(self.instance):
            raise InvalidArgument.field(
                "instance",
                f"{shown(self.instance)} is not 1-63 of a-z 0-9 _ . - starting with a letter or digit",
            )
        for name, low, high in (("tick_hz", 0.1, 1000.0), ("probe_rate_hz", 0.1, 30.0)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise InvalidArgument.field(
                    name.replace("_", "-"), f"{value} is out of range: {low} to {high}"
                )
        if self.inspector is not None:
            check_address(self.inspector, "inspector")
        if not 100 <= self.feedback_every_ms <= 60_000:
            raise InvalidArgument.field(
                "feedback-every-ms", f"{self.feedback_every_ms} is out of range: 100 to 60000"
            )
        if not 0 <= self.hold_ms <= 10_000:
            raise InvalidArgument.field("hold-ms", f"{self.hold_ms} is out of range: 0 to 10000")
        if not 1 <= self.module_budget_us <= 10_000_000:
            raise InvalidArgument.field(
                "module-budget-us", f"{self.module_budget_us} is out of range: 1 to 10000000"
            )
