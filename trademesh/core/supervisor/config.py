"""The Supervisor's typed config, its flags declared on it (trademesh.core.platform.config.flags): a light
module, so the CLI builds its parser without the service."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import positive_float
from trademesh.core.supervisor.engine import Mode

__all__ = ["DEFAULT_BOUNDS", "SupervisorConfig"]

# The operator's bounds that ship (docs/supervisor.md).
DEFAULT_BOUNDS = Path(__file__).with_name("bounds.toml")


@dataclass(frozen=True)
class SupervisorConfig:
    gateway_url: str
    api_key: str
    bounds_path: Path = setting(
        DEFAULT_BOUNDS,
        type=Path,
        flag="bounds",
        shown="the shipped bounds.toml",
        help="the operator's bounds, TOML (default: {default})",
    )
    mode: Mode = setting(
        Mode.PROPOSE, type=Mode, choices=tuple(m.value for m in Mode), help="off, propose or act"
    )
    every_s: float = setting(60.0, type=positive_float, help="seconds between looks at the mesh")
    # The LLM endpoint (the advisor's settings): base URL, model, API key; None: the rules alone.
    llm: tuple[str, str, str | None] | None = None
    book: str = field(default_factory=lambda: f"{socket.gethostname()}-{time.time_ns() // 1_000_000}-")
    # The bus its audit trail goes to (and comes back from after a restart); None: kept in memory.
    redis_url: str | None = None

    def __post_init__(self) -> None:
        if not 0.2 <= self.every_s <= 3600:
            raise InvalidArgument.field("every-s", f"{self.every_s} is not in 0.2..3600 seconds")
