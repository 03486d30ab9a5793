"""Every service trademesh runs, by name: one line per service
(trademesh/venues/registry.py lists the venues).

From this table come the `trademesh` subcommands (trademesh.core.cli), the start order of
`trademesh up` (trademesh.core.cli.mesh.up), the kind a service registers under with the
gateway (trademesh.core.platform.service.lifecycle), the list `trademesh services` prints, and
the services docker-compose.yml must run (checked offline by tests/unit/test_deploy_files.py).
A new service is one package plus one line here.

An entry's module exposes `COMMAND`, a trademesh.core.platform.service.command.ServiceCommand:
its flags, its typed config, and the app that trademesh.core.platform.service.lifecycle runs.
Modules load lazily: the CLI imports only the module of the command it runs (and each module's
argparse part stays light).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trademesh.core.platform.errors import FailedPrecondition, NotFound

__all__ = [
    "INFRASTRUCTURE",
    "LOCAL_GATEWAY_URL",
    "METRICS_PORT_OFFSET",
    "SERVICES",
    "Kind",
    "ServiceEntry",
    "service_entry",
    "start_order",
]

# A service's Prometheus exporter listens on its gRPC port plus this, unless told otherwise.
METRICS_PORT_OFFSET = 4000
# What services depend on besides each other: not ours, run by compose (or embedded by `up`).
INFRASTRUCTURE = frozenset({"redis", "postgres"})
# The longest wait before restarting a service whose absence costs protection (ServiceEntry).
_PROTECTS_S = 1.0


class Kind(enum.Enum):
    """What a service is to the gateway's app registry (trademesh.registry.v1.Kind)."""

    GATEWAY = "gateway"  # the registry itself: it never registers
    VENUE = "venue"
    CORE = "core"


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    module: str
    kind: Kind
    # The default of --port: the gRPC port (the HTTP port for the gateway); None: per instance
    # (a venue's port is its line in trademesh/venues/registry.py).
    port: int | None
    summary: str
    # Services (by name) and INFRASTRUCTURE it needs running; `up` starts those first.
    depends_on: tuple[str, ...] = ()
    # The native gRPC port when --port is an HTTP port (the gateway); it serves /metrics there.
    grpc_port: int | None = None
    # The longest `up` waits to restart it after a crash (None: its usual backoff, up to 10 s).
    # Bounded where the service's absence costs protection: the inspector (only it re-plans a
    # position's stop-loss, protects a new fill and heartbeats the venues' dead-man switch,
    # whose ttl is 10 s by default) and the venues it trades through.
    restart_delay_max_s: float | None = None
    # False: a service in its first increments, run by hand (`trademesh <name>`) and in its
    # tests, not yet by `trademesh up`, compose or Kubernetes (those come with its own change).
    deployed: bool = True

    @property
    def metrics_port(self) -> int | None:
        """The default Prometheus port; None when it is the service's HTTP port or per instance."""
        if self.grpc_port is not None or self.port is None:
            return None
        return self.port + METRICS_PORT_OFFSET


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in [
        ServiceEntry(
            "gateway",
            "trademesh.gateway.command",
            Kind.GATEWAY,
            8081,
            "one URL for Studio, ops and agents: gRPC-web, login, /mcp, /metrics; the app registry",
            depends_on=("postgres",),
            grpc_port=8082,
        ),
        ServiceEntry(
            "venue",
            "trademesh.venues.command",
            Kind.VENUE,
            None,
            "one venue: MarketData, TradeFlow, Admin",
            restart_delay_max_s=_PROTECTS_S,
        ),
        ServiceEntry(
            "ingest",
            "trademesh.core.ingest.command",
            Kind.CORE,
            5100,
            "follow the venues' market data and publish it to the bus",
            depends_on=("redis", "venue"),
        ),
        ServiceEntry(
            "recorder",
            "trademesh.core.recorder.command",
            Kind.CORE,
            5101,
            "write the bus's market data and bars to PostgreSQL",
            depends_on=("redis", "postgres"),
        ),
        ServiceEntry(
            "bars",
            "trademesh.core.bars.command",
            Kind.CORE,
            5102,
            "build OHLCV bars from trades, repair gaps from venue history",
            depends_on=("redis", "venue"),
        ),
        ServiceEntry(
            "bridge",
            "trademesh.core.bridge.command",
            Kind.CORE,
            5103,
            "serve the bus live over gRPC (LiveData)",
            depends_on=("redis",),
        ),
        ServiceEntry(
            "detector",
            "trademesh.core.detector.command",
            Kind.CORE,
            8101,
            "run strategies (patches of modules) on the venues' market data; signals to the bus",
            depends_on=("redis", "postgres", "venue"),
        ),
        ServiceEntry(
            "advisor",
            "trademesh.core.advisor.command",
            Kind.CORE,
            8009,
            "decide on every signal (8 stages): intents or blocks; decisions, intents, telemetry to the bus",
            depends_on=("redis", "postgres", "venue", "bridge"),
        ),
        ServiceEntry(
            "inspector",
            "trademesh.core.inspector.command",
            Kind.CORE,
            8008,
            "the risk governor: checks intents against the policies, alone places orders, protects positions",
            depends_on=("redis", "venue"),
            restart_delay_max_s=_PROTECTS_S,
        ),
        ServiceEntry(
            "ledger",
            "trademesh.core.ledger.command",
            Kind.CORE,
            8010,
            "double-entry books of every fill, fee and funding payment; PnL by strategy; the trace",
            depends_on=("redis", "postgres", "venue"),
        ),
        ServiceEntry(
            "backtester",
            "trademesh.core.backtest.hub.command",
            Kind.CORE,
            8011,
            "the backtest hub: runs strategies over recorded history through the live cores; results",
            depends_on=("postgres",),
        ),
        ServiceEntry(
            "overwatch",
            "trademesh.core.overwatch.command",
            Kind.CORE,
            5104,
            "the market regime of every venue and symbol from its bars; changes to the bus",
            depends_on=("redis", "bars"),
        ),
        ServiceEntry(
            "screener",
            "trademesh.core.screener.command",
            Kind.CORE,
            5105,
            "screens (TOML) ranked on their cadence from the bars and tickers; results to the bus",
            depends_on=("redis", "bars"),
        ),
        ServiceEntry(
            "telegram",
            "trademesh.core.telegram.command",
            Kind.CORE,
            5106,
            "operators' commands from Telegram (/status, /pause, /resume, /closeall) via the gateway",
            depends_on=("gateway",),
        ),
        ServiceEntry(
            "supervisor",
            "trademesh.core.supervisor.command",
            Kind.CORE,
            5107,
            "watches the strategies, regimes and risk; proposes or takes bounded actions, audited",
            depends_on=("gateway",),
        ),
    ]
}

# The gateway's HTTP URL on this machine at its default port: where a service that calls the
# gateway's tools (the Supervisor, the Telegram bot) looks when told nowhere else. Derived from
# the gateway's line above, so a port moved there moves here.
_GATEWAY_PORT = SERVICES["gateway"].port
LOCAL_GATEWAY_URL = f"http://127.0.0.1:{_GATEWAY_PORT}"


def service_entry(name: str) -> ServiceEntry:
    entry = SERVICES.get(name)
    if entry is None:
        raise NotFound(f"unknown service {name!r}; known services: {', '.join(SERVICES)}")
    return entry


def start_order(names: list[str] | None = None) -> list[ServiceEntry]:
    """The services (all, or those named) dependencies first; the gateway, which the others
    register with, before everything; ties in table order. A cycle is an error naming it."""
    wanted = [service_entry(n) for n in names] if names is not None else list(SERVICES.values())
    chosen = {e.name for e in wanted}
    done: list[ServiceEntry] = [e for e in wanted if e.kind is Kind.GATEWAY]
    pending = [e for e in wanted if e.kind is not Kind.GATEWAY]
    while pending:
        placed = {e.name for e in done}
        ready = [e for e in pending if all(d in placed or d not in chosen for d in e.depends_on)]
        if not ready:
            raise FailedPrecondition(
                f"services depend on each other in a cycle: {', '.join(e.name for e in pending)}"
            )
        done.append(ready[0])
        pending.remove(ready[0])
    return done
