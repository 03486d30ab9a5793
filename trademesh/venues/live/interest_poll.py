"""A derivative's open interest read by REST (ccxt's fetch_open_interest), for a venue that
streams none (Binance USD-M's GET /fapi/v1/openInterest, OKX's GET /api/v5/public/open-interest).

An `OpenInterestPoll` is the watch of the stream's StreamWatcher, as a FundingPoll is for a
funding rate (trademesh/venues/live/funding_poll.py): each call waits until `every_s` after the last
answer, asks, and puts the answer in the exchange's `openInterests` (a new object each time, by
symbol: ccxt keeps no such cache), where the stream's StateNormalizer reads it once the watch
returns. A failed read is handled as a failed watch (a GAP notice and a reconnect for a network
error, the Retry-After of a rate limit, the backoff). Every answer is published, changed or not:
it says the interest holds at its time.
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.live.rest_poll import RestPoll

__all__ = ["OPEN_INTERESTS", "OpenInterestPoll"]

# The exchange attribute the answers are kept in, by symbol.
OPEN_INTERESTS = "openInterests"


class OpenInterestPoll(RestPoll):
    async def read(self) -> Any:
        return await self.exchange.fetch_open_interest(self.symbol)

    def keep(self, answer: Any) -> None:
        kept = getattr(self.exchange, OPEN_INTERESTS, None)
        if not isinstance(kept, dict):
            kept = {}
            setattr(self.exchange, OPEN_INTERESTS, kept)
        kept[self.symbol] = answer
