"""The account's pushes from the venue's private WebSocket (ccxt `watch_balance`, and
`watch_positions` where its client has it): each wake-up tells the runtime that the account
changed, and the runtime reads it again (trademesh.venues.runtime.account). A venue whose spec says
`account_stream` (and that has credentials) is ACCOUNT_FEED_PUSH; every other live venue polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.venues.live.watch import keep_watching

__all__ = ["AccountWatch"]

log = logging.getLogger(__name__)


class AccountWatch:
    def __init__(
        self, venue: str, exchange: Any, on_account: Callable[[], None], backoff: Callable[[], Backoff]
    ) -> None:
        self.venue = venue
        self.exchange = exchange
        self.on_account = on_account
        self._backoff = backoff
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        # What changed before the watches listen (a push then is lost): read once now.
        self.on_account()
        methods = ["watch_balance"]
        if self.exchange.has.get("watchPositions"):
            methods.append("watch_positions")
        for method in methods:
            self._tasks.append(asyncio.create_task(self._run(method), name=f"account-{method}"))

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)

    async def _run(self, method: str) -> None:
        def pushed(first: bool) -> None:
            if first:  # the first push after each (re)connection is logged
                log.info("%s: the account pushed by %s", self.venue, method)
            self.on_account()

        await keep_watching(self.venue, method, getattr(self.exchange, method), self._backoff(), pushed)
