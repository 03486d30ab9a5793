"""A small Kraken spot account for the replay stand-in, in Kraken's REST and WebSocket v2 formats.

What it knows of Kraken's formats (https://docs.kraken.com/api/):
- Private REST calls are form-encoded POSTs to /0/private/<Method>; every answer is
  {"error": [...], "result": {...}}, errors as "<E|W><category>:<message>".
- AddOrder takes pair (the AssetPairs key), type buy|sell, ordertype, volume, price,
  cl_ord_id, oflags, timeinforce; it answers {"descr": {"order": "buy 0.00100000 XBTCHF @ limit
  50000.0"}, "txid": ["O..."]}. A cl_ord_id held by an open order is refused ("EOrder:Duplicate
  order"; Kraken enforces the uniqueness among open orders only).
- CancelOrder (txid, or cl_ord_id) and CancelAll answer {"count": n}; an unknown order is
  "EOrder:Unknown order". CancelAllOrdersAfter (timeout in seconds, 0 disarms) answers
  {"currentTime", "triggerTime"}.
- OpenOrders {"open": {txid: order}}, ClosedOrders {"closed": {...}, "count": n} (both
  filter by cl_ord_id), QueryOrders (txid, comma separated) {txid: order}; an unknown txid is
  "EOrder:Invalid order". Orders as Kraken writes them: status pending|open|closed|canceled,
  opentm/closetm in seconds, descr {pair (altname), type, ordertype, price, price2, order},
  vol / vol_exec / cost / fee / price (average) as strings, oflags (fciq: fee in quote).
- Balance {asset: "amount"} and BalanceEx {asset: {"balance", "hold_trade"}}, by Kraken's
  asset ids (XXBT, ZUSD, CHF...). GetWebSocketsToken {"token", "expires"}.
- WebSocket v2 `executions` items (on change): pending_new (the whole order), new, trade
  (exec_id, trade_id, last_qty, last_price, cost, liquidity_ind, fees [{asset, qty}]),
  filled and canceled (cum_qty, cum_cost, avg_price), each with order_id, cl_ord_id,
  order_userref, order_status, timestamp.

The exchange it plays is simple: an order that does not cross the replayed book rests
(open) until canceled; a marketable one (a limit buy at or above the best ask, a sell at or
below the best bid, or a market order) fills at once and entirely at the best opposite price
of the book at the replay position (no walk through the depth), as a taker at the pair's
first fee tier (AssetPairs `fees`). The fee is charged in the quote currency on a buy and in
the base currency on a sell (Kraken's defaults, fciq and fcib) unless oflags ask otherwise.
Stop orders (ordertype stop-loss: price is the trigger; stop-loss-limit: price2 the limit;
`trigger` index|last) rest open and untriggered: the stand-in never triggers them.
A post-only order that would take is canceled, as an IOC or market order that finds nothing.
Balances are fixed except what open orders hold (hold_trade): the quote value of an open buy,
the size of an open sell; fills move no funds.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["BALANCES", "BestPrices", "KrakenOrderStore", "Pair", "pairs_of"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
# The best bid and ask of a pair (by wsname) at the replay position, as the venue wrote them.
BestPrices = Callable[[str], tuple[str, str] | None]
# The account's fixed balances, by Kraken asset id.
BALANCES = {
    "XXBT": Decimal("2"),
    "CHF": Decimal("100000"),
    "ZUSD": Decimal("100000"),
    "ZEUR": Decimal("100000"),
}
DUPLICATE = "EOrder:Duplicate order"
UNKNOWN = "EOrder:Unknown order"
INVALID = "EOrder:Invalid order"
_V2_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}


@dataclass(frozen=True)
class Pair:
    """What the store needs of a Kraken pair (from /0/public/AssetPairs)."""

    key: str  # the AssetPairs key ccxt sends as `pair`, e.g. "XBTCHF" or "XXBTZUSD"
    altname: str  # "XBTCHF"
    wsname: str  # "XBT/CHF"
    base: str  # asset ids: "XXBT"
    quote: str  # "CHF"
    pair_decimals: int
    lot_decimals: int
    taker_fee: Decimal  # a fraction: the first tier of `fees` (percent) / 100

    @property
    def v2_symbol(self) -> str:
        """WebSocket v2's name: "BTC/CHF"."""
        return "/".join(_V2_ASSETS.get(a, a) for a in self.wsname.split("/"))

    @property
    def v2_assets(self) -> tuple[str, str]:
        base, quote = self.v2_symbol.split("/")
        return base, quote


def pairs_of(body: str) -> dict[str, Pair]:
    """The pairs of an AssetPairs answer, by key and by altname."""
    found: dict[str, Pair] = {}
    for key, info in json.loads(body).get("result", {}).items():
        if "wsname" not in info:
            continue
        pair = Pair(
            key,
            info["altname"],
            info["wsname"],
            info["base"],
            info["quote"],
            int(info["pair_decimals"]),
            int(info["lot_decimals"]),
            Decimal(str(info["fees"][0][1])) / 100,
        )
        found[key] = found[info["altname"]] = pair
    return found


def _fixed(value: Decimal, decimals: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-decimals)), "f")


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ok(result: object) -> RestAnswer:
    return RestAnswer.json({"error": [], "result": result})


def _error(message: str) -> RestAnswer:
    return RestAnswer.json({"error": [message]})


def _positive(text: object) -> bool:
    try:
        return Decimal(str(text)) > 0
    except ArithmeticError:
        return False


@dataclass
class _Order:
    txid: str
    pair: Pair
    side: str
    kind: str  # limit | market | stop-loss | stop-loss-limit
    volume: Decimal
    price: Decimal | None  # the limit price
    cl_ord_id: str
    oflags: str
    tif: str
    opentm: float
    status: str = "open"
    closetm: float = 0.0
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    trades: tuple[str, ...] = ()
    trigger: Decimal | None = None  # stop orders: the trigger price
    trigger_ref: str = "index"  # what the trigger watches: index | last

    def describe(self) -> str:
        volume = _fixed(self.volume, self.pair.lot_decimals)
        where = "market" if self.price is None else f"limit {_fixed(self.price, self.pair.pair_decimals)}"
        if self.trigger is not None:
            stop = f"stop loss {_fixed(self.trigger, self.pair.pair_decimals)}"
            where = stop if self.price is None else f"{stop} -> {where}"
        return f"{self.side} {volume} {self.pair.altname} @ {where}"

    def average(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else Decimal(0)

    def rest(self, trades: bool) -> Json:
        """The order as QueryOrders / OpenOrders / ClosedOrders write it."""
        price = _fixed(self.price, self.pair.pair_decimals) if self.price is not None else "0"
        price2 = "0"
        if self.trigger is not None:  # Kraken's descr: price the trigger, price2 the limit
            price, price2 = _fixed(self.trigger, self.pair.pair_decimals), price
        row: Json = {
            "refid": None,
            "userref": 0,
            "cl_ord_id": self.cl_ord_id or None,
            "status": self.status,
            "opentm": self.opentm,
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": self.pair.altname,
                "type": self.side,
                "ordertype": self.kind,
                "price": price,
                "price2": price2,
                "leverage": "none",
                "order": self.describe(),
                "close": "",
            },
            "vol": _fixed(self.volume, self.pair.lot_decimals),
            "vol_exec": _fixed(self.vol_exec, self.pair.lot_decimals),
            "cost": _plain(self.cost),
            "fee": _plain(self.fee),
            "price": _plain(self.average()),
            "stopprice": _plain(self.trigger) if self.trigger is not None else "0.00000",
            "limitprice": "0.00000",
            "misc": "",
            "oflags": self.oflags,
        }
        if self.status in ("closed", "canceled"):
            row["closetm"] = self.closetm
            row["reason"] = "User requested" if self.status == "canceled" else None
        if trades and self.trades:
            row["trades"] = list(self.trades)
        return row

    def fee_asset(self) -> str:
        base, quote = self.pair.v2_assets
        return base if "fcib" in self.oflags else quote


class KrakenOrderStore:
    def __init__(self, pairs: Mapping[str, Pair], best: BestPrices) -> None:
        self.pairs = pairs
        self.best = best
        # An order change: a list of v2 `executions` items (sent as one message).
        self.on_executions: Callable[[list[Json]], None] = lambda items: None
        self.orders: dict[str, _Order] = {}
        self.cancel_after_s: int | None = None  # the last CancelAllOrdersAfter timeout
        self._trade_ids = itertools.count(40_000_001)
        self._routes: dict[str, Callable[[dict[str, str]], RestAnswer]] = {
            "AddOrder": self._add,
            "CancelOrder": self._cancel,
            "CancelAll": self._cancel_all,
            "CancelAllOrdersAfter": self._cancel_after,
            "OpenOrders": lambda p: _ok({"open": self._listed(p, True)}),
            "ClosedOrders": self._closed,
            "QueryOrders": self._query,
            "Balance": lambda p: _ok({a: _fixed(v, 10) for a, v in BALANCES.items()}),
            "BalanceEx": lambda p: _ok(self._balances()),
            "GetWebSocketsToken": lambda p: _ok({"token": secrets.token_urlsafe(32), "expires": 900}),
        }

    def answer(self, request: RestRequest) -> RestAnswer | None:
        """Kraken's answer to a private REST call; None for a path the store does not serve."""
        if "/0/private/" not in request.path:
            return None
        route = self._routes.get(request.path.rsplit("/", 1)[-1])
        return route(request.params()) if route is not None else None

    def open_orders(self) -> list[_Order]:
        return [o for o in self.orders.values() if o.status == "open"]

    # ---- placing

    def _add(self, params: dict[str, str]) -> RestAnswer:
        pair = self.pairs.get(params.get("pair", ""))
        if pair is None:
            return _error("EQuery:Unknown asset pair")
        client_id = params.get("cl_ord_id", "")
        if client_id and any(o.cl_ord_id == client_id for o in self.open_orders()):
            return _error(DUPLICATE)
        problem = _bad_argument(params)
        if problem:
            return _error(f"EGeneral:Invalid arguments:{problem}")
        order = self._new_order(pair, params)
        self.orders[order.txid] = order
        log.info("replay: Kraken AddOrder %s cl_ord_id=%s", order.side, order.cl_ord_id)
        self.on_executions([self._pending_new(order)])
        self.on_executions([self._status_item(order, "new", "new")])
        self._execute(order)
        return _ok({"descr": {"order": order.describe()}, "txid": [order.txid]})

    def _new_order(self, pair: Pair, params: dict[str, str]) -> _Order:
        side, kind = params["type"], params.get("ordertype", "limit")
        flags = params.get("oflags", "")
        if "fciq" not in flags and "fcib" not in flags:
            flags = ",".join(f for f in (flags, "fciq" if side == "buy" else "fcib") if f)
        stop = kind.startswith("stop-loss")
        limit = params.get("price2") if stop else params.get("price")
        return _Order(
            txid=_txid(),
            pair=pair,
            side=side,
            kind=kind,
            volume=Decimal(params["volume"]),
            price=Decimal(limit) if kind.endswith("limit") and limit else None,
            trigger=Decimal(params["price"]) if stop else None,
            trigger_ref=params.get("trigger", "index"),
            cl_ord_id=params.get("cl_ord_id", ""),
            oflags=flags,
            tif=params.get("timeinforce", "GTC").upper(),
            opentm=time.time(),
        )

    def _execute(self, order: _Order) -> None:
        """Fill a marketable order at once; cancel one that may only take (or only make) but cannot."""
        if order.trigger is not None:
            return  # a stop waits for its trigger (never reached here)
        price = self._crossing_price(order)
        if price is None:
            if order.kind == "market" or order.tif in ("IOC", "FOK"):
                self._set_canceled(order, "Insufficient liquidity")
        elif "post" in order.oflags:
            self._set_canceled(order, "Post only order")
        else:
            self._fill(order, price)

    def _crossing_price(self, order: _Order) -> Decimal | None:
        best = self.best(order.pair.wsname)
        if best is None:
            return None
        bid, ask = Decimal(best[0]), Decimal(best[1])
        if order.side == "buy":
            return ask if order.price is None or order.price >= ask else None
        return bid if order.price is None or order.price <= bid else None

    def _fill(self, order: _Order, price: Decimal) -> None:
        size = order.volume - order.vol_exec
        cost = size * price
        fee = (size if "fcib" in order.oflags else cost) * order.pair.taker_fee
        exec_id = _txid("T")
        now = time.time()
        order.vol_exec += size
        order.cost += cost
        order.fee += fee
        order.trades += (exec_id,)
        order.status, order.closetm = "closed", now
        trade = {
            **self._ids(order),
            "exec_id": exec_id,
            "exec_type": "trade",
            "trade_id": next(self._trade_ids),
            "symbol": order.pair.v2_symbol,
            "side": order.side,
            "last_qty": float(size),
            "last_price": float(price),
            "liquidity_ind": "t",
            "cost": float(cost),
            "order_status": "filled",
            "order_type": order.kind,
            "timestamp": _iso(now),
            "fee_usd_equiv": 0.0,
            "fees": [{"asset": order.fee_asset(), "qty": float(fee)}],
        }
        self.on_executions([trade, self._status_item(order, "filled", "filled")])

    # ---- canceling

    def _cancel(self, params: dict[str, str]) -> RestAnswer:
        order = self._find(params.get("txid", ""), params.get("cl_ord_id", ""))
        if order is None or order.status != "open":
            return _error(UNKNOWN)
        self._set_canceled(order, "User requested")
        return _ok({"count": 1})

    def _cancel_all(self, params: dict[str, str]) -> RestAnswer:
        live = self.open_orders()
        for order in live:
            self._set_canceled(order, "User requested")
        return _ok({"count": len(live)})

    def _cancel_after(self, params: dict[str, str]) -> RestAnswer:
        """Kraken's dead-man switch: timeout in seconds (0 disarms), under a day."""
        try:
            timeout = int(params.get("timeout", ""))
        except ValueError:
            return _error("EGeneral:Invalid arguments:timeout")
        if not 0 <= timeout < 86_400:
            return _error("EGeneral:Invalid arguments:timeout")
        self.cancel_after_s = timeout
        log.info("replay: Kraken CancelAllOrdersAfter timeout=%d", timeout)
        now = time.time()
        trigger = "0" if timeout == 0 else _iso(now + timeout)[:19] + "Z"
        return _ok({"currentTime": _iso(now)[:19] + "Z", "triggerTime": trigger})

    def _set_canceled(self, order: _Order, reason: str) -> None:
        order.status, order.closetm = "canceled", time.time()
        item = self._status_item(order, "canceled", "canceled")
        item.update(cancel_reason=reason, reason=reason)
        self.on_executions([item])

    # ---- reading

    def _find(self, txid: str, client_id: str) -> _Order | None:
        if txid:
            return self.orders.get(txid)
        live = [o for o in self.orders.values() if client_id and o.cl_ord_id == client_id]
        return next((o for o in reversed(live) if o.status == "open"), live[-1] if live else None)

    def _listed(self, params: dict[str, str], open_: bool) -> dict[str, Json]:
        client_id = params.get("cl_ord_id")
        trades = params.get("trades") in ("true", "True", "1")
        return {
            o.txid: o.rest(trades)
            for o in reversed(self.orders.values())  # newest first, as Kraken lists them
            if (o.status == "open") == open_ and (client_id is None or o.cl_ord_id == client_id)
        }

    def _closed(self, params: dict[str, str]) -> RestAnswer:
        closed = self._listed(params, False)
        return _ok({"closed": closed, "count": len(closed)})

    def _query(self, params: dict[str, str]) -> RestAnswer:
        trades = params.get("trades") in ("true", "True", "1")
        ids = [txid for txid in params.get("txid", "").split(",") if txid]
        if not ids or any(txid not in self.orders for txid in ids):
            return _error(INVALID)
        return _ok({txid: self.orders[txid].rest(trades) for txid in ids})

    def _balances(self) -> dict[str, Json]:
        held = dict.fromkeys(BALANCES, Decimal(0))
        for order in self.open_orders():
            remaining = order.volume - order.vol_exec
            if order.side == "buy" and order.price is not None:
                held[order.pair.quote] = held.get(order.pair.quote, Decimal(0)) + remaining * order.price
            elif order.side == "sell":
                held[order.pair.base] = held.get(order.pair.base, Decimal(0)) + remaining
        return {
            asset: {"balance": _fixed(BALANCES.get(asset, Decimal(0)), 10), "hold_trade": _fixed(hold, 10)}
            for asset, hold in held.items()
        }

    # ---- executions

    def _ids(self, order: _Order) -> Json:
        ids: Json = {"order_id": order.txid, "order_userref": 0}
        if order.cl_ord_id:
            ids["cl_ord_id"] = order.cl_ord_id
        return ids

    def _pending_new(self, order: _Order) -> Json:
        item: Json = {
            **self._ids(order),
            "symbol": order.pair.v2_symbol,
            "order_qty": float(order.volume),
            "cum_cost": 0.0,
            "time_in_force": order.tif,
            "exec_type": "pending_new",
            "side": order.side,
            "order_type": order.kind,
            "order_status": "pending_new",
            "fee_usd_equiv": 0.0,
            "fee_ccy_pref": "fcib" if "fcib" in order.oflags else "fciq",
            "timestamp": _iso(order.opentm),
        }
        if order.price is not None:
            item.update(limit_price_type="static", limit_price=float(order.price))
        if order.trigger is not None:
            item["triggers"] = {
                "reference": order.trigger_ref,
                "price": float(order.trigger),
                "price_type": "static",
                "status": "untriggered",
            }
        return item

    def _status_item(self, order: _Order, exec_type: str, status: str) -> Json:
        return {
            **self._ids(order),
            "exec_type": exec_type,
            "order_status": status,
            "cum_qty": float(order.vol_exec),
            "cum_cost": float(order.cost),
            "avg_price": float(order.average()),
            "fee_usd_equiv": 0.0,
            "timestamp": _iso(order.closetm or order.opentm),
        }

    def snapshot(self) -> list[Json]:
        """The open orders as the executions channel's snapshot lists them."""
        return [
            {**self._pending_new(o), "exec_type": "new", "order_status": "new"} for o in self.open_orders()
        ]


def _bad_argument(params: Mapping[str, str]) -> str | None:
    """The first argument of an order Kraken would refuse (EGeneral:Invalid arguments:<name>)."""
    if params.get("type") not in ("buy", "sell"):
        return "type"
    kind = params.get("ordertype", "limit")
    if kind not in ("limit", "market", "stop-loss", "stop-loss-limit"):
        return "ordertype"
    if not _positive(params.get("volume")):
        return "volume"
    if kind != "market" and not _positive(params.get("price")):
        return "price"
    if kind == "stop-loss-limit" and not _positive(params.get("price2")):
        return "price2"
    if params.get("trigger", "index") not in ("index", "last"):
        return "trigger"
    return None


def _txid(prefix: str = "O") -> str:
    """A Kraken-style id: "OQCLML-BW3P3-BUCMWZ"."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    parts = ["".join(secrets.choice(alphabet) for _ in range(n)) for n in (5, 5, 6)]
    return prefix + "-".join(parts)
