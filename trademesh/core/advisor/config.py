"""The advisor service's typed config (from `trademesh advisor`'s flags, trademesh.core.advisor.command),
and the core's settings from a TOML file (`--config`), one table per section of AdvisorConfig:

    [validation]
    max_spread_ratio = "0.004"      # decimals as strings (or numbers), exact
    min_risk_reward = "1.2"
    [synthesis]
    deadline_ms = 5000
    [intent]
    entry = "limit_cross"           # enums by value

The sections and keys are AdvisorConfig's, read by trademesh.core.platform.config.schema: an unknown
section or key, or a value of the wrong type, is InvalidArgument naming it and the file
("validation.min_risk_reward: ... (in advisor.toml)"); each section checks its ranges when made.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import socket
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.gather_config import GatherConfig
from trademesh.core.advisor.llm.config import LlmConfig
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.config.mesh import MeshConfig, check_address
from trademesh.core.platform.config.schema import load
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.platform.service.command import instance_name, positive_float, positive_int, whole_number

__all__ = [
    "MESH_MAX_NOTIONAL_SHARE",
    "MESH_TIMEFRAME",
    "AdvisorServiceConfig",
    "bridge_address",
    "consumer_problem",
    "default_consumer",
    "load_engine_config",
    "with_overrides",
]

_INSTANCE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
# A consumer's name in the group: a host's name (upper case too) after the instance's.
_CONSUMER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}")
_CONSUMER_RULE = "1-200 of A-Z a-z 0-9 _ . : @ - starting with a letter or digit"


def bridge_address(text: str) -> str:
    """--bridge: HOST:PORT."""
    try:
        return check_address(text, "bridge")
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc.violations[0].description)) from None


def default_consumer(instance: str) -> str:
    """`<instance>-<host>`: one consumer per replica (a pod's name is its host's), stable across
    the restarts of one host, so a restarted advisor reads its own pending entries first."""
    return f"{instance}-{socket.gethostname()}"


def consumer_problem(name: str) -> str | None:
    """Why `name` cannot be a consumer's (None: it can)."""
    return None if _CONSUMER.fullmatch(name) else f"{shown(name)} is not {_CONSUMER_RULE}"


def load_engine_config(path: Path | None) -> AdvisorConfig:
    """The core's settings from a TOML file (docs/advisor-service.md, "Configuration"); the defaults
    without one."""
    if path is None:
        return AdvisorConfig()
    return load(AdvisorConfig, read_toml(path, "config"), str(path))


def with_overrides(config: AdvisorConfig, **overrides: Any) -> AdvisorConfig:
    """`config` with "section.field" values replaced (None: left as it is)."""
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        if value is not None:
            section, _, name = dotted.partition("__")
            changes.setdefault(section, {})[name] = value
    for section, values in changes.items():
        config = dataclasses.replace(
            config, **{section: dataclasses.replace(getattr(config, section), **values)}
        )
    return config


# How `trademesh up` runs the advisor (trademesh.core.advisor.command's mesh arguments), and a backtest's
# defaults with it: 1m bars (stops and targets far enough from the entry to pay the fees; the bar
# service backfills them at start, trademesh.core.bars.command.MESH_BACKFILL_S), and at most 0.8% of the
# sim's demo account per intent.
MESH_TIMEFRAME = "1m"
MESH_MAX_NOTIONAL_SHARE = Decimal("0.008")


@dataclass(frozen=True)
class AdvisorServiceConfig:
    redis_url: str
    # The recorder's database: recorded signals (Decide by id), decisions and telemetry (the
    # API's lists), bars (the context, through the tools).
    database_url: str
    engine: AdvisorConfig = field(default_factory=AdvisorConfig)
    # Venues given on the command line (they win over the gateway's registry); the rest of the
    # mesh (the bridge, venues) is found through the registry at TRADEMESH_GATEWAY.
    mesh: MeshConfig = field(default_factory=MeshConfig)
    bridge: str | None = setting(
        None,
        type=bridge_address,
        help="the bridge's HOST:PORT (default: found through the gateway's registry)",
    )
    gateway: str | None = None
    gather: GatherConfig = field(default_factory=GatherConfig)
    # A model version or .model.json path; None: the shipped default.
    model: str | None = setting(None, help="a model version or .model.json path (default: the shipped one)")
    model_dir: Path | None = None
    calibration: Path | None = setting(None, type=Path, help="a .calibration.json (default: the shipped one)")
    llm: LlmConfig | None = None
    # Offer the mesh's tools to the LLM (at most llm.max_tool_calls calls per synthesis).
    llm_tools: bool = True
    # Decisions in flight at once (context, LLM); past it the bus is read no further until one ends.
    max_in_flight: int = setting(1000, type=positive_int, help="decisions at once")
    # A signal older than this when read (a backlog after an outage) is not decided.
    max_signal_age_s: float = setting(60.0, type=positive_float, help="older signals are not decided")
    expire_every_ms: int = 100
    instance: str = setting("advisor", type=instance_name, help="this advisor's name")
    group: str = "advisor"
    # This replica's name in the group (each replica its own: docs/advisor-service.md, "Replicas");
    # "": `<instance>-<host>` (default_consumer).
    consumer: str = ""
    # A replica's entries left pending this long (it died) are taken over by another (XAUTOCLAIM).
    claim_idle_ms: int = setting(
        60_000,
        type=whole_number(100),
        help="take over the signals another replica read and left this long (it died; default {default})",
    )
    # How long a signal's "decided" mark is kept (a redelivered signal is not decided twice).
    decided_ttl_s: int = 7 * 24 * 3600
    source: str = field(default_factory=lambda: f"advisor/{socket.gethostname()}")

    def __post_init__(self) -> None:
        if not _INSTANCE.fullmatch(self.instance):
            raise InvalidArgument.field(
                "instance",
                f"{shown(self.instance)} is not 1-63 of a-z 0-9 _ . - starting with a letter or digit",
            )
        if not self.consumer:
            object.__setattr__(self, "consumer", default_consumer(self.instance))
        if (problem := consumer_problem(self.consumer)) is not None:
            raise InvalidArgument.field("consumer", problem)
        if not 100 <= self.claim_idle_ms <= 86_400_000:
            raise InvalidArgument.field(
                "claim-idle-ms", f"{self.claim_idle_ms} is out of range: 100 to 86400000"
            )
        if not 1 <= self.max_in_flight <= 100_000:
            raise InvalidArgument.field("max-in-flight", f"{self.max_in_flight} is out of range: 1 to 100000")
        if not 10 <= self.expire_every_ms <= 60_000:
            raise InvalidArgument.field(
                "expire-every-ms", f"{self.expire_every_ms} is out of range: 10 to 60000"
            )
        if self.gather.timeframe:
            Timeframe.from_label(self.gather.timeframe)
        if not 1 <= self.gather.bars <= 1000:
            raise InvalidArgument.field("bars", f"{self.gather.bars} is out of range: 1 to 1000")
