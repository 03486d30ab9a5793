"""OKX perpetual swaps for the replay stand-in: the same v5 wire formats as spot (okx.standin),
the account's funding bills and the public funding rate history (trademesh.venues.okx_swap.standin.funding),
the liquidation orders channel routed by instrument (trademesh.venues.okx_swap.standin.derivatives),
and leverage, position margin and liquidations (trademesh.venues.okx_swap.standin.margin: set-leverage,
leverage-info, position-tiers, positions at the mark of the replayed `mark-price` pushes, a
`full_liquidation` order when the mark reaches a position's liquidation price)."""

from __future__ import annotations

import json
from decimal import Decimal

from trademesh.venues.okx_swap.standin.derivatives import OkxLiquidationsReplay
from trademesh.venues.okx_swap.standin.funding import bills, funding_rate_history
from trademesh.venues.okx_swap.standin.margin import SwapOrderStore
from trademesh.venues.replay.adapter import RestAnswer, RestRequest
from trademesh.venues.replay.capture import Capture, WsFrame

__all__ = ["OkxSwapReplay"]

_BILLS = ("/api/v5/account/bills", "/api/v5/account/bills-archive")
_FUNDING_RATES = "/api/v5/public/funding-rate-history"


class OkxSwapReplay(OkxLiquidationsReplay):
    """BTC-USDT-SWAP and friends: instruments come from /public/instruments?instType=SWAP."""

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.marks: dict[str, Decimal] = {}  # the last `mark-price` push replayed, by instId
        spot = self.orders
        self.orders: SwapOrderStore = SwapOrderStore(spot.instruments, self._best, self._mark)
        self.orders.on_push, self.orders.on_account = spot.on_push, spot.on_account
        self.orders.on_position = spot.on_position

    def _mark(self, inst_id: str) -> Decimal | None:
        """The instrument's mark: its last `mark-price` push replayed, else its book's mid."""
        if inst_id in self.marks:
            return self.marks[inst_id]
        best = self._best(inst_id)
        return (Decimal(best[0]) + Decimal(best[1])) / 2 if best is not None else None

    def delivered(self, frame: WsFrame, topic: str) -> None:
        super().delivered(frame, topic)
        channel, _, inst_id = topic.partition(":")
        if channel == "mark-price":
            for data in json.loads(frame.text).get("data") or []:
                self.marks[str(data.get("instId"))] = Decimal(str(data.get("markPx")))
        if channel == "mark-price" or self.is_book(topic):
            self.orders.liquidate(inst_id)

    def rest(self, request: RestRequest) -> RestAnswer:
        if request.method == "GET" and request.path.endswith(_BILLS):
            return bills(request.params())
        if request.method == "GET" and request.path.endswith(_FUNDING_RATES):
            return funding_rate_history(request.params(), set(self.orders.instruments))
        return super().rest(request)
