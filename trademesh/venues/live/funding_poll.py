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

from typing import Any

from trademesh.venues.live.rest_poll import RestPoll

__all__ = ["FundingPoll"]


class FundingPoll(RestPoll):
    async def read(self) -> Any:
        return await self.exchange.fetch_funding_rate(self.symbol)

    def keep(self, answer: Any) -> None:
        self.exchange.fundingRates[self.symbol] = answer
