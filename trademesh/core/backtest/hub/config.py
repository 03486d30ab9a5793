"""The backtest hub's typed config (built by trademesh.core.backtest.hub.command from the flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trademesh.core.platform.config.flags import setting
from trademesh.core.platform.service.command import instance_name

__all__ = ["BacktesterConfig"]


@dataclass(frozen=True)
class BacktesterConfig:
    # The recorder's database: the history runs read, and where their results are kept.
    database_url: str
    gateway: str | None = None
    instance: str = setting("backtester", type=instance_name, help="this hub's name")
    # More strategy files than the shipped examples (trademesh/core/detector/strategies/), by file name.
    strategy_dir: Path | None = setting(
        None, type=Path, help="more strategy files, besides the shipped examples"
    )
    # Runs at once (each a child process on a core); past it StartBacktest is refused.
    max_runs: int = setting(1, type=int, help="runs at once, each on a core")
    # Where runs' config files go (a temporary directory when None).
    work_dir: Path | None = None
