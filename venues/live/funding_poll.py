"""A perpetual's funding rate read by REST (ccxt's fetch_funding_rate), for a venue that streams
none (or a config that asks for polling: LiveConfig.funding_stream = false).

A `FundingPoll` is the watch of the stream's StreamWatcher: each call waits until `every_s` after
the last answer, asks, and puts the answer in ccxt's `fundingRates` (a new object each time), where
the FundingNormalizer reads it once the watch returns, as it reads a streamed one. So a failed
read is handled as a failed watch (a network error a GAP notice and a reconnect, a rate limit its
Retry-After, the backoff), and the next read after a failure is not held back by the interval.
Every answer is published, changed or not: it says the rate still holds at its time (a screen's
`max_age_s` counts from it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FundingPoll"]


class FundingPoll:
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
        funding = await self.exchange.fetch_funding_rate(self.symbol)
        self._answered_at = self._clock()
        self.exchange.fundingRates[self.symbol] = funding
