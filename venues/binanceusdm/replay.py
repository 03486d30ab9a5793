"""Binance USD-M futures' wire formats for the replay stand-in (venues.binance.replay with /fapi).

What differs from spot:
- REST lives under /fapi on fapi.binance.com: /fapi/v1/exchangeInfo and /fapi/v1/depth;
  depth snapshots carry "E" (event time) and "T" (transaction time) besides lastUpdateId,
  bids and asks.
- WebSocket (fstream.binance.com) depthUpdate events carry `pu`, the previous event's `u`
  (update ids are not contiguous). ccxt's linear rule: after a snapshot with lastUpdateId N,
  drop events with u < N, apply the first with U <= N <= u (or pu == N), then every event
  must have pu equal to the previous u, else the book is resynced from a new snapshot.
  The inherited DepthBook keeps lastUpdateId at the last replayed event's u, so a snapshot
  served mid-replay links to the next event through pu == N.
- bookTicker and aggTrade events carry "e", "E" and "T"; klines are as on spot.
- Orders: /fapi/v1/order and /fapi/v1/openOrders as on spot (the shared order store);
  cancel-all is DELETE /fapi/v1/allOpenOrders, answered {"code":200,"msg":...}; the
  account is GET /fapi/v2/account or /fapi/v3/account ({"assets":[{asset, walletBalance,
  availableBalance, initialMargin, marginBalance...}], "positions":[...]}); positions are
  GET /fapi/v2|v3/positionRisk (a list; empty: orders never fill here) and ccxt reads
  /fapi/v1/leverageBracket first (a list of {"symbol", "brackets"}).
"""

from __future__ import annotations

from typing import Any

from venues.binance.replay import BinanceReplay
from venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["BinanceUsdmReplay"]

_WALLET = {"USDT": "100000.00000000", "BNB": "2.00000000"}


def _asset(asset: str, amount: str) -> dict[str, Any]:
    return {
        "asset": asset,
        "walletBalance": amount,
        "unrealizedProfit": "0.00000000",
        "marginBalance": amount,
        "maintMargin": "0.00000000",
        "initialMargin": "0.00000000",
        "positionInitialMargin": "0.00000000",
        "openOrderInitialMargin": "0.00000000",
        "crossWalletBalance": amount,
        "crossUnPnl": "0.00000000",
        "availableBalance": amount,
        "maxWithdrawAmount": amount,
        "updateTime": 1626992741000,
    }


class BinanceUsdmReplay(BinanceReplay):
    api_prefix = "/fapi/v1/"

    def rest(self, request: RestRequest) -> RestAnswer:
        route = (request.method, request.path.split("/fapi/", 1)[-1] if "/fapi/" in request.path else "")
        if route == ("DELETE", "v1/allOpenOrders"):
            symbol = request.params().get("symbol")
            for order in self.orders.orders.values():
                if order["status"] == "NEW" and symbol in (None, order["symbol"]):
                    order["status"] = "CANCELED"
            return RestAnswer.json({"code": 200, "msg": "The operation of cancel all open order is done."})
        if route in (("GET", "v2/account"), ("GET", "v3/account")):
            return RestAnswer.json(self._account())
        if route in (("GET", "v2/positionRisk"), ("GET", "v3/positionRisk"), ("GET", "v1/leverageBracket")):
            return RestAnswer.json([])
        return super().rest(request)

    @staticmethod
    def _account() -> dict[str, Any]:
        assets = [_asset(asset, amount) for asset, amount in _WALLET.items()]
        return {
            "totalInitialMargin": "0.00000000",
            "totalWalletBalance": _WALLET["USDT"],
            "availableBalance": _WALLET["USDT"],
            "assets": assets,
            "positions": [],
        }
