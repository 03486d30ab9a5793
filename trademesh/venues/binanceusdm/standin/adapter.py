"""Binance USD-M futures' wire formats for the replay stand-in
(trademesh.venues.binance.standin.adapter with /fapi).

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
- Orders: /fapi/v1/order and /fapi/v1/openOrders as on spot (the shared order store), and
  PUT /fapi/v1/order, the modify of an open limit order (price and quantity, in place);
  cancel-all is DELETE /fapi/v1/allOpenOrders, answered {"code":200,"msg":...}; the
  account is GET /fapi/v2/account or /fapi/v3/account ({"assets":[{asset, walletBalance,
  availableBalance, initialMargin, marginBalance...}], "positions":[...]}); positions are
  GET /fapi/v2|v3/positionRisk (the fills' one-way positions, below) and ccxt reads
  /fapi/v1/leverageBracket first (a list of {"symbol", "brackets"}). Order answers are put in
  the futures shape (avgPrice and cumQuote; no fills, no commission: futures REST answers
  carry none).
- Leverage, margin type, positions and liquidations: trademesh.venues.binanceusdm.standin.margin
  (POST /fapi/v1/leverage and /fapi/v1/marginType, GET /fapi/v1/leverageBracket and
  /fapi/v1/symbolConfig, GET /fapi/v2|v3/positionRisk from the fills, a LIQUIDATION order when
  a replayed mark price reaches a position's liquidation price).
- User data stream: POST /fapi/v1/listenKey hands out a listenKey (PUT keeps it alive,
  DELETE closes it); ccxt 4.5.90 then opens fstream.binance.com/private/ws?listenKey=<key>
  (the older fstream.binance.com/ws/<key> is also served) and sends nothing on it. Each
  change the shared order store reports as a spot `executionReport` goes out as the
  futures `ORDER_TRADE_UPDATE` event ({"e","E","T","o":{...}}, unwrapped) to the
  connections opened with a key the stand-in handed out; after a fill, an ACCOUNT_UPDATE with
  the wallet's balances follows it (ccxt watch_balance: the venue's ACCOUNT_FEED_PUSH).
- Open interest: GET /fapi/v1/openInterest, made up from the replay (its aggTrades), as
  trademesh.venues.binanceusdm.standin.derivatives says; the session's liquidations are its
  `<symbol>@forceOrder` frames (BINANCE_FUTURES_LIQUIDATIONS.ws.1.0), replayed as any market stream.
- Funding: GET /fapi/v1/income answers the account's fixed funding payments, and the public
  GET /fapi/v1/fundingRate the rates of their funding times (trademesh.venues.binanceusdm.standin.funding).
  GET /fapi/v1/premiumIndex (a symbol's mark price, index price, funding rate and next funding
  time: what ccxt's fetch_funding_rate reads) answers from the last `markPriceUpdate` replayed of
  the symbol (the session's `@markPrice@1s` frames; before the first is played, the first: the
  session's state at its start), -1121 for a symbol the capture has none of.
- Stop orders are conditional (algo) orders: /fapi/v1/algoOrder, /openAlgoOrders and
  /algoOpenOrders, their changes sent as ALGO_UPDATE events
(trademesh.venues.binanceusdm.standin.order_store);
  /fapi/v1/order refuses a stop type (-4120) as Binance does since December 2025.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trademesh.venues.binance.standin.adapter import BinanceReplay
from trademesh.venues.binance.standin.synthesized import futures_symbol
from trademesh.venues.binanceusdm.standin.derivatives import OpenInterestBook
from trademesh.venues.binanceusdm.standin.funding import funding_rates, income
from trademesh.venues.binanceusdm.standin.margin import (
    ORDER_UPDATE_FIXED,
    UsdmAccount,
    liquidation_order,
    liquidation_update,
)
from trademesh.venues.binanceusdm.standin.order_store import STOP_TYPES, BinanceAlgoOrders
from trademesh.venues.replay.adapter import MockConnection, RestAnswer, RestRequest
from trademesh.venues.replay.capture import Capture, WsFrame

__all__ = ["BinanceUsdmReplay"]

_WALLET = {"USDT": "100000.00000000", "BNB": "2.00000000"}
_ALGO_ONLY = "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
_MARGIN_READS = ("v1/leverageBracket", "v1/symbolConfig", "v2/positionRisk", "v3/positionRisk")
_USER = "user-data:"  # + listenKey: the topic of one user data stream connection
# Spot-only members of the shared store's order answers, absent from futures answers.
_SPOT_ONLY = ("orderListId", "cummulativeQuoteQty", "fills", "isWorking", "workingTime", "transactTime")


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


def _amount(value: Decimal) -> str:
    return f"{value:.8f}"


def _ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator as Binance writes an average price ("0" before any fill)."""
    if Decimal(denominator) == 0:
        return "0"
    return format((Decimal(numerator) / Decimal(denominator)).normalize(), "f")


def futures_order(order: dict[str, Any]) -> dict[str, Any]:
    """The shared store's (spot) order answer as /fapi/v1/order writes it."""
    answer = {key: value for key, value in order.items() if key not in _SPOT_ONLY}
    quote = order.get("cummulativeQuoteQty", "0")
    answer.update(
        cumQty=order["executedQty"],
        cumQuote=quote,
        avgPrice=_ratio(quote, order["executedQty"]),
        stopPrice="0",
        reduceOnly=False,
        closePosition=False,
        positionSide="BOTH",
        workingType="CONTRACT_PRICE",
        priceProtect=False,
        origType=order["type"],
        priceMatch="NONE",
        goodTillDate=0,
    )
    return answer


def order_trade_update(report: dict[str, Any]) -> dict[str, Any]:
    """A spot executionReport as the futures user data stream's ORDER_TRADE_UPDATE event."""
    trade = report["x"] == "TRADE"
    order = {
        "s": report["s"],
        "c": report["c"],
        "S": report["S"],
        "o": report["o"],
        "f": report["f"],
        "q": report["q"],
        "p": report["p"],
        "ap": _ratio(report["Z"], report["z"]),
        "x": report["x"],
        "X": report["X"],
        "i": report["i"],
        "l": report["l"],
        "z": report["z"],
        "L": report["L"],
        "T": report["T"],
        "t": report["t"] if trade else 0,
        "m": report["m"],
        "R": False,
        "ot": report["o"],
        "rp": "0",
        **ORDER_UPDATE_FIXED,
    }
    if trade:  # the commission is pushed with fills only
        order.update(N=report["N"], n=report["n"])
    return {"e": "ORDER_TRADE_UPDATE", "E": report["E"], "T": report["T"], "o": order}


def account_update(event_ms: int, positions: list[dict[str, Any]]) -> dict[str, Any]:
    """The user data stream's ACCOUNT_UPDATE after an order's fill: the wallet's balances
    (wb, cw; the stand-in's fixed wallet) and the position the fill moved."""
    balances = [{"a": asset, "wb": amount, "cw": amount, "bc": "0"} for asset, amount in _WALLET.items()]
    return {
        "e": "ACCOUNT_UPDATE",
        "E": event_ms,
        "T": event_ms,
        "a": {"m": "ORDER", "B": balances, "P": positions},
    }


class BinanceUsdmReplay(BinanceReplay):
    api = "Binance USD-M futures' API"
    api_prefix = "/fapi/v1/"
    depth_paths = ("/fapi/v1/depth",)
    market_endpoint = "usdm"  # fstream.binance.com's frames only
    api_host = "fapi.binance.com"
    futures = True
    describe = staticmethod(futures_symbol)

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.orders.on_event = self._futures_event
        self.algo_orders = BinanceAlgoOrders(self._best)
        self.algo_orders.on_event = self._publish_user_event
        self.listen_keys: list[str] = []
        self._key_numbers = itertools.count(1)
        # The last markPriceUpdate replayed, by symbol; each symbol's first until then.
        self.mark_prices: dict[str, dict[str, Any]] = {}
        for market in reversed(self.market_frames()):
            self._note_mark_price(market.frame, market.topic)
        received = capture.received
        start_ms = int(received[0].ts * 1000) if received else 0
        self.open_interest = OpenInterestBook(self.native_symbols(), start_ms)
        self.account = UsdmAccount(lambda: Decimal(_WALLET["USDT"]), self._mark)
        self._liquidation_trades = itertools.count(90_000_001)

    def delivered(self, frame: WsFrame, topic: str) -> None:
        super().delivered(frame, topic)
        self.open_interest.delivered(frame, topic)
        symbol = self._note_mark_price(frame, topic)
        if symbol is not None:
            self._liquidate(symbol)

    def _note_mark_price(self, frame: WsFrame, topic: str) -> str | None:
        if "@markprice" not in topic:
            return None
        data = json.loads(frame.text)
        event = data.get("data", data)
        self.mark_prices[str(event.get("s"))] = event
        return str(event.get("s"))

    def _mark(self, symbol: str) -> Decimal | None:
        """The symbol's mark price: its last markPriceUpdate replayed, else its book's mid."""
        event = self.mark_prices.get(symbol)
        if event is not None:
            return Decimal(str(event["p"]))
        best = self._best(symbol)
        return (Decimal(best[0]) + Decimal(best[1])) / 2 if best is not None else None

    def _liquidate(self, symbol: str) -> None:
        """A position the replayed mark has reached the liquidation price of: Binance's
        LIQUIDATION order, its ORDER_TRADE_UPDATE and the ACCOUNT_UPDATE after it."""
        event = self.account.liquidate(symbol)
        if event is None:
            return
        self.orders.orders[event.order_id] = liquidation_order(event)
        self._publish_user_event(liquidation_update(event, next(self._liquidation_trades)))
        self._publish_user_event(account_update(event.at_ms, self.account.update_rows(symbol)))

    def _premium_index(self, symbol: str) -> RestAnswer:
        """GET /fapi/v1/premiumIndex?symbol=: the symbol's last mark price event, as the REST
        answer writes it (Binance's documented fields)."""
        event = self.mark_prices.get(symbol)
        if event is None:
            return RestAnswer.json({"code": -1121, "msg": "Invalid symbol."}, 400)
        return RestAnswer.json(
            {
                "symbol": symbol,
                "markPrice": event["p"],
                "indexPrice": event["i"],
                "estimatedSettlePrice": event["P"],
                "lastFundingRate": event["r"],
                "interestRate": "0.00010000",
                "nextFundingTime": event["T"],
                "time": event["E"],
            }
        )

    # ---- the user data stream

    def _futures_event(self, report: dict[str, Any]) -> None:
        """Each order change to every user data stream the stand-in's listenKeys opened; after a
        fill, the account's ACCOUNT_UPDATE too (its fixed wallet: ccxt watch_balance)."""
        if report["x"] == "TRADE":
            size, price = Decimal(report["l"]), Decimal(report["L"])
            self.account.on_fill(report["s"], report["S"], size, price, report["T"])
        self._publish_user_event(order_trade_update(report))
        if report["x"] == "TRADE":
            self._publish_user_event(account_update(report["E"], self.account.update_rows(report["s"])))

    def _publish_user_event(self, event: dict[str, Any]) -> None:
        text = json.dumps(event)
        for key in self.listen_keys:
            self.publish(_USER + key, text)

    def _listen_key(self, method: str) -> RestAnswer:
        if method == "POST":  # Binance hands back the account's active key while it is valid
            if not self.listen_keys:
                self.listen_keys.append(f"replayListenKey{next(self._key_numbers):04d}")
            return RestAnswer.json({"listenKey": self.listen_keys[-1]})
        if method == "DELETE":
            self.listen_keys.clear()
            return RestAnswer.json({})
        if not self.listen_keys:
            return RestAnswer.json({"code": -1125, "msg": "This listenKey does not exist."}, 400)
        return RestAnswer.json({"listenKey": self.listen_keys[-1]})

    def key_of(self, path: str) -> str | None:
        """The listenKey a user data stream connection opened with, None for market connections.

        `private/ws?listenKey=<key>` (ccxt 4.5.90) or `ws/<key>`; when the server leaves the
        query out of the path, a private/ws connection is taken to use the latest key.
        """
        parts = urlsplit(path)
        if keys := parse_qs(parts.query).get("listenKey"):
            return keys[0]
        if parts.path.endswith("/private/ws"):
            return self.listen_keys[-1] if self.listen_keys else None
        head, _, last = parts.path.rpartition("/")
        return last if head.endswith("/ws") and last in self.listen_keys else None

    def on_connect(self, connection: MockConnection) -> list[str]:
        key = self.key_of(connection.path)
        if key is not None:
            connection.subscribe(_USER + key)
        return super().on_connect(connection)

    # ---- REST

    def rest(self, request: RestRequest) -> RestAnswer:
        route = (request.method, request.path.split("/fapi/", 1)[-1] if "/fapi/" in request.path else "")
        if route[1] == "v1/listenKey":
            return self._listen_key(request.method)
        if route == ("DELETE", "v1/allOpenOrders"):
            self.orders.answer(request, "allOpenOrders")  # cancels each, reporting it
            return RestAnswer.json({"code": 200, "msg": "The operation of cancel all open order is done."})
        algo = self.algo_orders.answer(request, route[1])
        if algo is not None:
            return algo
        if route == ("PUT", "v1/order"):  # modify: an open limit order's price and quantity in place
            return self._in_futures_shape(self.orders.modify(request.params()))
        if route == ("POST", "v1/order") and request.params().get("type") in STOP_TYPES:
            return RestAnswer.json({"code": -4120, "msg": _ALGO_ONLY}, 400)
        if route[1] in ("v1/order", "v1/openOrders"):
            return self._in_futures_shape(super().rest(request))
        if route in (("GET", "v2/account"), ("GET", "v3/account")):
            return RestAnswer.json(self._account())
        margin = self._margin(request, route)
        if margin is not None:
            return margin
        if route == ("GET", "v1/income"):
            return income(request.params())
        if route == ("GET", "v1/fundingRate"):
            return funding_rates(request.params())
        if route == ("GET", "v1/openInterest"):  # made up from the replay (standin/derivatives.py)
            return self.open_interest.answer(request.params().get("symbol", ""))
        if route == ("GET", "v1/premiumIndex"):
            return self._premium_index(request.params().get("symbol", ""))
        return super().rest(request)

    def _margin(self, request: RestRequest, route: tuple[str, str]) -> RestAnswer | None:
        """The leverage, margin type, bracket and position calls
        (trademesh.venues.binanceusdm.standin.margin)."""
        params = request.params()
        symbol = params.get("symbol")
        if route == ("POST", "v1/leverage"):
            return self.account.set_leverage(params)
        if route == ("POST", "v1/marginType"):
            orders = self.orders.orders.values()
            open_orders = any(o["status"] == "NEW" and o["symbol"] == symbol for o in orders)
            return self.account.set_margin_type(params, open_orders)
        if route[0] != "GET" or route[1] not in _MARGIN_READS:
            return None
        symbols = [symbol] if symbol else self._listed()
        if route == ("GET", "v1/leverageBracket"):
            brackets = self.account.brackets(symbols)
            return RestAnswer.json(brackets[0] if symbol else brackets)  # one symbol's: an object
        if route == ("GET", "v1/symbolConfig"):
            return RestAnswer.json(self.account.symbol_config(symbols))
        if route in (("GET", "v2/positionRisk"), ("GET", "v3/positionRisk")):
            return RestAnswer.json(self.account.position_risk(route[1][:2], symbol))
        return None

    @staticmethod
    def _in_futures_shape(answer: RestAnswer) -> RestAnswer:
        if answer.status != 200:
            return answer
        body = json.loads(answer.body)
        if isinstance(body, list):
            return RestAnswer.json([futures_order(order) for order in body])
        return RestAnswer.json(futures_order(body))

    def _account(self) -> dict[str, Any]:
        """GET /fapi/v2|v3/account: the wallet, the USDT margins the positions hold, the positions."""
        initial, maintenance, upnl = self.account.held_margin()
        assets = [_asset(asset, amount) for asset, amount in _WALLET.items()]
        usdt = assets[0]
        available = Decimal(_WALLET["USDT"]) - initial + min(upnl, Decimal(0))
        usdt.update(
            unrealizedProfit=_amount(upnl),
            marginBalance=_amount(Decimal(_WALLET["USDT"]) + upnl),
            maintMargin=_amount(maintenance),
            initialMargin=_amount(initial),
            positionInitialMargin=_amount(initial),
            crossUnPnl=_amount(upnl),
            availableBalance=_amount(available),
            maxWithdrawAmount=_amount(available),
        )
        return {
            "totalInitialMargin": _amount(initial),
            "totalMaintMargin": _amount(maintenance),
            "totalWalletBalance": _WALLET["USDT"],
            "totalUnrealizedProfit": _amount(upnl),
            "availableBalance": _amount(available),
            "assets": assets,
            "positions": self.account.position_risk("v3", None),
        }
