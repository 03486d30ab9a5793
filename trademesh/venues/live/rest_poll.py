"""A market's state read by REST as the watch of a stream's StreamWatcher, for a venue that
streams none (a funding rate: trademesh/venues/live/funding_poll.py; an open interest:
trademesh/venues/live/interest_poll.py).

Each call waits until `every_s` after the last answer, asks, and keeps the answer where the
stream's normalizer reads it once the watch returns. A failed read is handled as a failed watch
(a network error a GAP notice and a reconnect, a rate limit its Retry-After, the backoff), and
the next read after a failure is not held back by the interval.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Callable
from typing import Any

__all__ = ["RestPoll"]


class RestPoll(abc.ABC):
    def __init__(
        self, exchange: Any, symbol: str, every_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.every_s = every_s
        self._clock = clock
        self._answered_at: float | None = None

    async def __call__(self) -> None:
        if self._answered_at is not None:
            wait = self._answered_at + self.every_s - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
        answer = await self.read()
        self._answered_at = self._clock()
        self.keep(answer)

    @abc.abstractmethod
    async def read(self) -> Any:
        """The exchange's answer for `symbol` (a ccxt fetch_* call)."""

    @abc.abstractmethod
    def keep(self, answer: Any) -> None:
        """Puts the answer where the stream's normalizer reads it."""
