"""OKX perpetual swaps for the replay stand-in: the same v5 wire formats as spot (okx.standin),
the account's funding bills and the public funding rate history (venues.okx_swap.standin.funding)."""

from __future__ import annotations

from venues.okx.standin.adapter import OkxReplay
from venues.okx_swap.standin.funding import bills, funding_rate_history
from venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["OkxSwapReplay"]

_BILLS = ("/api/v5/account/bills", "/api/v5/account/bills-archive")
_FUNDING_RATES = "/api/v5/public/funding-rate-history"


class OkxSwapReplay(OkxReplay):
    """BTC-USDT-SWAP and friends: instruments come from /public/instruments?instType=SWAP."""

    def rest(self, request: RestRequest) -> RestAnswer:
        if request.method == "GET" and request.path.endswith(_BILLS):
            return bills(request.params())
        if request.method == "GET" and request.path.endswith(_FUNDING_RATES):
            return funding_rate_history(request.params(), set(self.orders.instruments))
        return super().rest(request)
