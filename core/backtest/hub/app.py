"""The backtest hub: the store opened (its tables migrated; runs a stopped hub left running
marked failed), then the Backtest API served while runs go on in child processes
(core.backtest.hub.runs). At its stop, the runs still going on are cancelled."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.backtest.hub.api import backtest_service
from core.backtest.hub.config import BacktesterConfig
from core.backtest.hub.runs import RunManager
from core.backtest.hub.strategies import StrategyFiles
from core.backtest.store import BacktestStore
from core.foundations.env import redact_url
from core.foundations.errors import Unavailable
from core.foundations.retry import until_reachable
from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext

__all__ = ["Backtester"]

log = logging.getLogger(__name__)


class Backtester:
    def __init__(self, config: BacktesterConfig) -> None:
        self.config = config
        self.strategies = StrategyFiles(config.strategy_dir)
        self._store: BacktestStore | None = None
        self._manager: RunManager | None = None

    @property
    def name(self) -> str:
        return self.config.instance

    @property
    def store(self) -> BacktestStore:
        if self._store is None:
            raise Unavailable("the backtester is starting")
        return self._store

    @property
    def manager(self) -> RunManager:
        if self._manager is None:
            raise Unavailable("the backtester is starting")
        return self._manager

    def grpc_services(self) -> Sequence[Service]:
        return (backtest_service(self),)

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        where = f"backtester: PostgreSQL at {redact_url(config.database_url)}"
        store = await until_reachable(
            lambda: BacktestStore.open(config.database_url),
            what=where,
            retry_on=(Unavailable,),
            stop=ctx.stop,
        )
        if store is None:
            return
        self._store = store
        self._manager = RunManager(store, config.database_url, config.max_runs, config.work_dir)
        try:
            lost = await store.fail_running("the backtester stopped while it ran")
            if lost:
                log.warning("backtester: %d run(s) left running by an earlier backtester marked failed", lost)
            await ctx.ready()
            await ctx.stop.wait()
        finally:
            await self._manager.close()
            await store.close()
