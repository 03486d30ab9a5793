"""The funding rate read by REST where a venue streams none: at most every `every_s` after an
answer, at once after a failure, each answer a new object in ccxt's fundingRates."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import pytest

from trademesh.venues.live.funding_poll import FundingPoll


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Exchange:
    """ccxt's fetch_funding_rate, answering or failing as told; asyncio.sleep is the loop's own."""

    def __init__(self, clock: Clock) -> None:
        self.fundingRates: dict[str, Any] = {}
        self.asked: list[float] = []
        self.failures = 0
        self._clock = clock

    async def fetch_funding_rate(self, symbol: str) -> dict[str, Any]:
        self.asked.append(self._clock())
        if self.failures:
            self.failures -= 1
            raise ccxt.NetworkError("connection reset")
        return {"symbol": symbol, "fundingRate": 0.0001, "timestamp": len(self.asked)}


async def test_a_poll_waits_its_interval_after_an_answer_and_not_after_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    exchange = Exchange(clock)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the wait, taken at once: the clock moves by it
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", sleep)
    poll = FundingPoll(exchange, "X/Y:Y", every_s=60, clock=clock)
    await poll()
    first = exchange.fundingRates["X/Y:Y"]
    clock.now += 15  # the watcher's own work between calls
    await poll()
    assert slept == [45] and exchange.fundingRates["X/Y:Y"] is not first, "a new object: read again"
    exchange.failures = 1
    with pytest.raises(ccxt.NetworkError):
        await poll()
    clock.now += 2  # the watcher's backoff
    await poll()
    assert slept == [45, 60] and exchange.asked == [100.0, 160.0, 220.0, 222.0]
