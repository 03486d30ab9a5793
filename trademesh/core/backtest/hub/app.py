"""The backtest hub: the store opened (its tables migrated; runs a stopped hub left running
marked failed), then the Backtest API served while runs go on in child processes
(trademesh.core.backtest.hub.runs). At its stop, the runs still going on are cancelled."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from trademesh.core.backtest.hub.api import backtest_service
from trademesh.core.backtest.hub.config import BacktesterConfig
from trademesh.core.backtest.hub.runs import RunManager
from trademesh.core.backtest.hub.strategies import StrategyFiles
from trademesh.core.backtest.store import BacktestStore
from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext

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
