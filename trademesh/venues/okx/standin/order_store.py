"""A small OKX account for the replay stand-in, in OKX's API v5 REST and `orders` channel formats,
with stops as OKX's algo orders. What it knows of OKX's formats and the exchange it plays:
docs/standins.md, "OKX"."""

from __future__ import annotations

import itertools
import json
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = [
    "BALANCES",
    "UID",
    "BestPrices",
    "OkxAlgoOrders",
    "OkxInstrument",
    "OkxOrderStore",
    "instruments_of",
]

log = logging.getLogger(__name__)

Json = dict[str, Any]
# The best bid and ask of an instrument at the replay position, as the venue wrote them.
BestPrices = Callable[[str], tuple[str, str] | None]
# The account's fixed balances: currency -> (available, frozen).
BALANCES = {"USDT": ("100000", "0"), "BTC": ("2", "0")}
_TAKER_FEE = {"SPOT": Decimal("0.001"), "SWAP": Decimal("0.0005")}
_COIN_STEP = Decimal("1e-8")  # an inverse swap's fees and PnL in the coin
_LEVERAGE = Decimal(10)
_MAINTENANCE = Decimal("0.004")
_LIVE = ("live", "partially_filled")
_TAKES_ONLY = ("market", "ioc", "fok", "optimal_limit_ioc")
# Order types without a price: market, and the swaps' market IOC (what ccxt sends for a market IOC).
_PRICELESS = ("market", "optimal_limit_ioc")
# The account's user id, as OKX's private pushes carry it in `arg`.
UID = "447750382161920"


@dataclass(frozen=True)
class OkxInstrument:
    """What the store needs of an OKX instrument (from /public/instruments)."""

    inst_id: str
    inst_type: str  # SPOT or SWAP
    base: str
    quote: str  # the quote currency of a spot pair, the settlement currency of a swap
    ct_val: Decimal  # base units per contract (1 for spot); an inverse swap's USD a contract
    # A coin-margined swap (ctType "inverse": BTC-USD-SWAP, 100 USD contracts settled in BTC):
    # its fees and PnL are in the coin, of the contracts' coin worth (sz x ctVal / px).
    inverse: bool = False


def instruments_of(body: str) -> dict[str, OkxInstrument]:
    """The instruments of a /public/instruments answer, by instId."""
    found: dict[str, OkxInstrument] = {}
    for row in json.loads(body).get("data", []):
        spot = row["instType"] == "SPOT"
        found[row["instId"]] = OkxInstrument(
            row["instId"],
            row["instType"],
            row["baseCcy"] if spot else row["ctValCcy"],
            row["quoteCcy"] if spot else row["settleCcy"],
            Decimal(1) if spot else Decimal(row["ctVal"]),
            row.get("ctType") == "inverse",
        )
    return found


def _text(value: Decimal) -> str:
    """A decimal as OKX writes numbers: plain, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _now() -> str:
    return str(int(time.time() * 1000))


def _answer(data: list[Json], acks: bool = False) -> RestAnswer:
    """OKX's envelope; for order calls the overall code follows the per-order sCodes."""
    code, msg = "0", ""
    if acks:
        failed = sum(1 for ack in data if ack["sCode"] != "0")
        if failed == len(data) and data:
            code, msg = "1", "All operations failed"
        elif failed:
            code, msg = "2", "Bulk operation partially succeeded"
    envelope = {"code": code, "msg": msg, "data": data}
    if acks:
        envelope.update(inTime=_now() + "000", outTime=_now() + "000")
    return RestAnswer.json(envelope)


def _ack(order: Mapping[str, Any], code: str = "0", message: str = "") -> Json:
    return {
        "clOrdId": order.get("clOrdId", ""),
        "ordId": order.get("ordId", "") if code == "0" else "",
        "tag": order.get("tag", ""),
        "ts": _now(),
        "sCode": code,
        "sMsg": message,
    }


def _positive(text: Any) -> bool:
    try:
        return Decimal(str(text)) > 0
    except ArithmeticError:
        return False


def _bad_parameter(params: Mapping[str, Any]) -> str | None:
    """The first parameter of an order that OKX would refuse (51000 "Parameter {0} error")."""
    if params.get("side") not in ("buy", "sell"):
        return "side"
    if not _positive(params.get("sz")):
        return "sz"
    if params.get("ordType", "limit") not in _PRICELESS and not _positive(params.get("px")):
        return "px"
    return None


def _average(held_px: Decimal, held: Decimal, px: Decimal, size: Decimal, inverse: bool) -> Decimal:
    """A position's average price after adding `size` at `px`: by size, or for an inverse swap
    the harmonic mean (contracts over the coin they were worth), to 1e-8 of a price unit."""
    if not inverse or held == 0:
        return px if held == 0 else (held_px * held + px * size) / (held + size)
    coin = held / held_px + size / px
    return ((held + size) / coin).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)


@dataclass
class _Position:
    pos: Decimal = Decimal(0)  # signed contracts
    avg_px: Decimal = Decimal(0)
    pnl: Decimal = Decimal(0)  # realized by closing
    fee: Decimal = Decimal(0)  # negative: charged
    c_time: str = ""
    u_time: str = ""
    trade_id: str = ""


class OkxOrderStore:
    def __init__(self, instruments: Mapping[str, OkxInstrument], best: BestPrices) -> None:
        self.instruments = instruments
        self.best = best
        # An order change: (instType, instId, the `orders` channel's data object).
        self.on_push: Callable[[str, str, Json], None] = lambda inst_type, inst_id, data: None
        # After a fill: the `account` channel's data object, and a swap's `positions` one.
        self.on_account: Callable[[Json], None] = lambda data: None
        self.on_position: Callable[[str, str, Json], None] = lambda inst_type, inst_id, data: None
        self.orders: dict[str, Json] = {}
        self.positions: dict[str, _Position] = {}
        self._ids = itertools.count(690_000_000_000_000_001)
        self._trade_ids = itertools.count(410_000_001)
        self._routes: dict[tuple[str, str], Callable[[RestRequest], RestAnswer]] = {
            ("POST", "trade/order"): lambda r: self._orders_call(r, self._place),
            ("POST", "trade/batch-orders"): lambda r: self._orders_call(r, self._place),
            ("POST", "trade/cancel-order"): lambda r: self._orders_call(r, self._cancel),
            ("POST", "trade/cancel-batch-orders"): lambda r: self._orders_call(r, self._cancel),
            ("POST", "trade/amend-order"): lambda r: self._orders_call(r, self._amend),
            ("GET", "trade/order"): self._get_order,
            ("GET", "trade/orders-pending"): self._pending,
            ("GET", "account/balance"): lambda r: _answer([self._balance()]),
            ("GET", "account/positions"): self._positions,
        }

    def answer(self, request: RestRequest) -> RestAnswer | None:
        """OKX's answer to a v5 trade or account call; None for a path the store does not serve."""
        endpoint = request.path.split("/api/v5/", 1)[-1]
        route = self._routes.get((request.method, endpoint))
        return route(request) if route is not None else None

    # ---- placing and canceling

    def _orders_call(self, request: RestRequest, one: Callable[[Json], Json]) -> RestAnswer:
        body = json.loads(request.body or "{}")
        items = body if isinstance(body, list) else [body]
        return _answer([one(item) for item in items], acks=True)

    def _place(self, params: Json) -> Json:
        instrument = self.instruments.get(str(params.get("instId")))
        if instrument is None:
            return _ack(params, "51001", "Instrument ID does not exist")
        client_id = str(params.get("clOrdId") or "")
        if client_id and any(o["clOrdId"] == client_id and o["state"] in _LIVE for o in self.orders.values()):
            return _ack(params, "51016", "Duplicated clOrdId")
        problem = _bad_parameter(params)
        if problem:
            return _ack(params, "51000", f"Parameter {problem} error")
        order = self._new_order(params, instrument)
        self.orders[order["ordId"]] = order
        self._push(order)
        self._execute(order, instrument)
        return _ack(order, "0", "Order placed")

    def _new_order(self, params: Json, instrument: OkxInstrument) -> Json:
        now = _now()
        order_id = str(next(self._ids))
        kind = str(params.get("ordType", "limit"))
        return {
            "instType": instrument.inst_type,
            "instId": instrument.inst_id,
            "tgtCcy": str(params.get("tgtCcy", "")) if instrument.inst_type == "SPOT" else "",
            "ccy": "",
            "ordId": order_id,
            "clOrdId": str(params.get("clOrdId") or ""),
            "tag": str(params.get("tag", "")),
            "px": "" if kind in _PRICELESS else str(params["px"]),
            "pxUsd": "",
            "pxVol": "",
            "pxType": "",
            "sz": str(params["sz"]),
            "pnl": "0",
            "ordType": kind,
            "side": str(params["side"]),
            "posSide": str(params.get("posSide", "net" if instrument.inst_type == "SWAP" else "")),
            "tdMode": str(params.get("tdMode", "cash")),
            "accFillSz": "0",
            "fillPx": "",
            "tradeId": "",
            "fillSz": "0",
            "fillTime": "",
            "avgPx": "",
            "state": "live",
            "lever": _text(_LEVERAGE) if instrument.inst_type == "SWAP" else "",
            "feeCcy": self._fee_currency(instrument, str(params["side"])),
            "fee": "0",
            "rebateCcy": instrument.quote,
            "rebate": "0",
            "source": "",
            "category": "normal",
            "reduceOnly": "true" if params.get("reduceOnly") in (True, "true") else "false",
            "cancelSource": "",
            "cancelSourceReason": "",
            "stpId": "",
            "stpMode": str(params.get("stpMode", "cancel_maker")),
            "attachAlgoOrds": [],
            "uTime": now,
            "cTime": now,
        }

    @staticmethod
    def _fee_currency(instrument: OkxInstrument, side: str) -> str:
        if instrument.inst_type == "SPOT" and side == "buy":
            return instrument.base
        return instrument.quote

    def _execute(self, order: Json, instrument: OkxInstrument) -> None:
        """Fill a marketable order at once; cancel one that may only take (or only make) but cannot."""
        price = self._crossing_price(order)
        if price is None:
            if order["ordType"] in _TAKES_ONLY:
                self._set_canceled(order)
        elif order["ordType"] == "post_only":
            self._set_canceled(order)
        else:
            self._fill(order, instrument, price)

    def _crossing_price(self, order: Json) -> str | None:
        best = self.best(order["instId"])
        if best is None:
            return None
        bid, ask = best
        market = order["ordType"] in _PRICELESS
        if order["side"] == "buy":
            return ask if market or Decimal(order["px"]) >= Decimal(ask) else None
        return bid if market or Decimal(order["px"]) <= Decimal(bid) else None

    def _fill(self, order: Json, instrument: OkxInstrument, price: str) -> None:
        size, px = Decimal(order["sz"]), Decimal(price)
        rate = _TAKER_FEE.get(instrument.inst_type, _TAKER_FEE["SPOT"])
        received_base = instrument.inst_type == "SPOT" and order["side"] == "buy"
        if instrument.inverse:  # of the coin worth, to OKX's 1e-8 of the coin
            fee = -(size * instrument.ct_val / px * rate).quantize(_COIN_STEP, rounding=ROUND_HALF_EVEN)
        else:
            fee = -(size * rate if received_base else size * instrument.ct_val * px * rate)
        now, trade_id = _now(), str(next(self._trade_ids))
        order.update(
            state="filled",
            accFillSz=order["sz"],
            avgPx=price,
            fillPx=price,
            fillSz=order["sz"],
            tradeId=trade_id,
            fillTime=now,
            fee=_text(Decimal(order["fee"]) + fee),
            uTime=now,
        )
        if instrument.inst_type == "SWAP":
            self._move_position(order, instrument, size, px, fee)
        self._push(order, fill_fee=fee)
        self.on_account(self._balance())
        if instrument.inst_type == "SWAP":
            self.on_position(instrument.inst_type, instrument.inst_id, self._position(instrument.inst_id))

    def _move_position(
        self, order: Json, instrument: OkxInstrument, size: Decimal, px: Decimal, fee: Decimal
    ) -> None:
        """Net mode: a fill adds to the position, or closes part of it (realizing pnl) and may flip it."""
        position = self.positions.setdefault(order["instId"], _Position(c_time=order["fillTime"]))
        signed = size if order["side"] == "buy" else -size
        if position.pos == 0 or (position.pos > 0) == (signed > 0):
            total = position.pos + signed
            position.avg_px = _average(position.avg_px, abs(position.pos), px, size, instrument.inverse)
            position.pos = total
        else:
            closed = min(abs(signed), abs(position.pos))
            direction = 1 if position.pos > 0 else -1
            if instrument.inverse:  # the coin: face x (1/entry - 1/exit)
                gain = closed * instrument.ct_val * (1 / position.avg_px - 1 / px) * direction
                position.pnl += gain.quantize(_COIN_STEP, rounding=ROUND_HALF_EVEN)
            else:
                position.pnl += (px - position.avg_px) * closed * instrument.ct_val * direction
            position.pos += signed
            if position.pos != 0 and (position.pos > 0) == (signed > 0):
                position.avg_px = px  # flipped: the rest opened at this price
        position.fee += fee
        position.u_time, position.trade_id = order["fillTime"], order["tradeId"]

    def _cancel(self, params: Json) -> Json:
        order = self._find(params)
        if order is None:
            return _ack(
                params,
                "51400",
                "Order cancellation failed as the order has been filled, canceled or does not exist",
            )
        if order["state"] == "canceled":
            return _ack(order, "51401", "Order has been canceled")
        if order["state"] == "filled":
            return _ack(order, "51402", "Order has been completed")
        self._set_canceled(order)
        return _ack(order)

    def _amend(self, params: Json) -> Json:
        """OKX's amend-order: a live order's new size (newSz, its total, above what filled) and
        price (newPx) in place, pushed on `orders` with amendResult "0"; it fills at once when its
        new price crosses the book. Refused as OKX refuses: 51503 no live order, 51000 a bad value."""
        order = self._find(params)
        if order is None or order["state"] not in _LIVE:
            message = "Order modification failed as the order has been filled, canceled or does not exist"
            return {**_ack(params, "51503", message), "reqId": str(params.get("reqId", ""))}
        new_sz, new_px = params.get("newSz"), params.get("newPx")
        if new_sz is not None and not (
            _positive(new_sz) and Decimal(str(new_sz)) > Decimal(order["accFillSz"])
        ):
            return _ack(order, "51000", "Parameter newSz error")
        if new_px is not None and (order["ordType"] in _PRICELESS or not _positive(new_px)):
            return _ack(order, "51000", "Parameter newPx error")
        if new_sz is None and new_px is None:
            return _ack(order, "51000", "Parameter newSz error")
        order.update(
            sz=order["sz"] if new_sz is None else str(new_sz),
            px=order["px"] if new_px is None else str(new_px),
            uTime=_now(),
            amendResult="0",
        )
        self._push(order)
        if self._crossing_price(order) is not None and order["ordType"] != "post_only":
            self._execute(order, self.instruments[order["instId"]])
        return {**_ack(order), "reqId": str(params.get("reqId", ""))}

    def _set_canceled(self, order: Json) -> None:
        order.update(state="canceled", uTime=_now())
        self._push(order)

    # ---- reading

    def _find(self, params: Mapping[str, Any]) -> Json | None:
        inst_id, order_id = params.get("instId"), params.get("ordId")
        if order_id:
            found = self.orders.get(str(order_id))
        else:
            client_id = params.get("clOrdId")
            found = next(
                (o for o in reversed(self.orders.values()) if client_id and o["clOrdId"] == client_id), None
            )
        return found if found is not None and found["instId"] == inst_id else None

    def _get_order(self, request: RestRequest) -> RestAnswer:
        order = self._find(request.query)
        if order is None:
            return RestAnswer.json({"code": "51603", "msg": "Order does not exist", "data": []})
        return _answer([order])

    def _pending(self, request: RestRequest) -> RestAnswer:
        query = request.query
        live = [
            o
            for o in reversed(self.orders.values())
            if o["state"] in _LIVE
            and query.get("instId") in (None, o["instId"])
            and query.get("instType") in (None, o["instType"])
        ]
        return _answer(live)

    def _balance(self) -> Json:
        now = _now()
        details = [
            {
                "ccy": ccy,
                "eq": _text(Decimal(free) + Decimal(frozen)),
                "cashBal": _text(Decimal(free) + Decimal(frozen)),
                "availBal": free,
                "frozenBal": frozen,
                "ordFrozen": frozen,
                "availEq": "",
                "disEq": "",
                "eqUsd": "",
                "upl": "0",
                "isoEq": "0",
                "fixedBal": "0",
                "liab": "",
                "crossLiab": "",
                "interest": "",
                "maxLoan": "",
                "notionalLever": "0",
                "spotInUseAmt": "",
                "stgyEq": "0",
                "twap": "0",
                "uTime": now,
            }
            for ccy, (free, frozen) in BALANCES.items()
        ]
        return {
            "adjEq": "",
            "imr": "",
            "mmr": "",
            "mgnRatio": "",
            "notionalUsd": "",
            "ordFroz": "",
            "totalEq": "",
            "isoEq": "0",
            "uTime": now,
            "details": details,
        }

    def _positions(self, request: RestRequest) -> RestAnswer:
        wanted = request.query.get("instId")
        ids = wanted.split(",") if wanted else list(self.positions)
        return _answer([self._position(i) for i in ids if i in self.positions and self.positions[i].pos != 0])

    def _position(self, inst_id: str) -> Json:
        position, instrument = self.positions[inst_id], self.instruments[inst_id]
        notional = abs(position.pos) * instrument.ct_val * position.avg_px
        margin = notional
        if instrument.inverse:  # the face in USD; margins in the coin
            notional = abs(position.pos) * instrument.ct_val
            margin = (notional / position.avg_px).quantize(_COIN_STEP, rounding=ROUND_HALF_EVEN)
        return {
            "instType": instrument.inst_type,
            "instId": inst_id,
            "posId": str(zlib.crc32(inst_id.encode())),
            "posSide": "net",
            "pos": _text(position.pos),
            "posCcy": "",
            "availPos": "",
            "avgPx": _text(position.avg_px),
            "markPx": _text(position.avg_px),  # no mark price is replayed: upl is 0
            "last": _text(position.avg_px),
            "upl": "0",
            "uplRatio": "0",
            "mgnMode": "cross",
            "lever": _text(_LEVERAGE),
            "notionalUsd": _text(notional),
            "imr": _text(margin / _LEVERAGE),
            "mmr": _text(margin * _MAINTENANCE),
            "margin": "",
            "mgnRatio": "",
            "liqPx": "",
            "ccy": instrument.quote,
            "adl": "1",
            "pnl": _text(position.pnl),
            "fee": _text(position.fee),
            "fundingFee": "0",
            "liqPenalty": "0",
            "realizedPnl": _text(position.pnl + position.fee),
            "tradeId": position.trade_id,
            "cTime": position.c_time,
            "uTime": position.u_time,
        }

    # ---- the private stream

    def _push(self, order: Json, fill_fee: Decimal | None = None) -> None:
        """The `orders` channel's data object for this change (fill fields only on a fill)."""
        filled = fill_fee is not None
        data = {
            **order,
            "fillPx": order["fillPx"] if filled else "",
            "fillSz": order["fillSz"] if filled else "0",
            "tradeId": order["tradeId"] if filled else "",
            "fillTime": order["fillTime"] if filled else "",
            "fillFee": _text(fill_fee) if fill_fee is not None else "0",
            "fillFeeCcy": order["feeCcy"] if filled else "",
            "execType": "T" if filled else "",
            "fillNotionalUsd": "",
            "notionalUsd": "",
            "amendResult": "",
            "reqId": "",
            "code": "0",
            "msg": "",
        }
        self.on_push(order["instType"], order["instId"], data)


# ---- the stops: algo orders

_TRIGGER_PX_TYPES = ("last", "mark", "index")


def _algo_envelope(data: list[Json], code: str = "0", msg: str = "") -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": msg, "data": data})


def _answer_acks(data: list[Json]) -> RestAnswer:
    return _answer(data, acks=True)


def _bad_trigger_parameter(params: Mapping[str, Any]) -> str | None:
    """The first field of a trigger order that OKX would refuse (51000 "Parameter {0} error")."""
    if params.get("side") not in ("buy", "sell"):
        return "side"
    if not _positive(params.get("sz")):
        return "sz"
    if not _positive(params.get("triggerPx")):
        return "triggerPx"
    if str(params.get("orderPx")) != "-1" and not _positive(params.get("orderPx")):
        return "orderPx"
    if params.get("triggerPxType", "last") not in _TRIGGER_PX_TYPES:
        return "triggerPxType"
    return None


class OkxAlgoOrders:
    """The account's algo orders, by algoId; `inst_types` maps a known instId to SPOT or SWAP."""

    def __init__(self, inst_types: Mapping[str, str]) -> None:
        self.inst_types = inst_types
        # An algo order change: (instType, instId, the `orders-algo` channel's data object).
        self.on_push: Callable[[str, str, Json], None] = lambda inst_type, inst_id, data: None
        # After a fill: the `account` channel's data object, and a swap's `positions` one.
        self.on_account: Callable[[Json], None] = lambda data: None
        self.on_position: Callable[[str, str, Json], None] = lambda inst_type, inst_id, data: None
        self.orders: dict[str, Json] = {}
        self._ids = itertools.count(2_190_000_000_000_000_001)  # apart from ordinary ordIds
        self._routes: dict[tuple[str, str], Callable[[RestRequest], RestAnswer]] = {
            ("POST", "trade/order-algo"): self._place,
            ("GET", "trade/order-algo"): self._get,
            ("GET", "trade/orders-algo-pending"): self._pending,
            ("POST", "trade/cancel-algos"): self._cancel,
        }

    def answer(self, request: RestRequest, endpoint: str) -> RestAnswer | None:
        """OKX's answer to /api/v5/<endpoint> when it is an algo call, else None."""
        route = self._routes.get((request.method, endpoint))
        return route(request) if route is not None else None

    # ---- placing

    def _place(self, request: RestRequest) -> RestAnswer:
        log.info("replay: OKX order-algo %s", request.body)
        params = json.loads(request.body or "{}")
        refused = self._refused(params)
        if refused is not None:
            return _answer_acks([self._ack(params, *refused)])
        order = self._new_order(params)
        self.orders[order["algoId"]] = order
        self._push(order)
        return _answer_acks([self._ack(order, "0", "Order placed")])

    def _refused(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        if str(params.get("instId")) not in self.inst_types:
            return "51001", "Instrument ID does not exist"
        if params.get("ordType") != "trigger":  # the other algo types are not played
            return "51000", "Parameter ordType error"
        problem = _bad_trigger_parameter(params)
        if problem:
            return "51000", f"Parameter {problem} error"
        client_id = str(params.get("algoClOrdId") or "")
        if client_id and any(o["algoClOrdId"] == client_id for o in self._live()):
            return "51016", "Duplicated clOrdId"
        return None

    def _new_order(self, params: Mapping[str, Any]) -> Json:
        now, inst_id = _now(), str(params["instId"])
        swap = self.inst_types[inst_id] == "SWAP"
        return {
            "instType": self.inst_types[inst_id],
            "instId": inst_id,
            "ccy": "",
            "ordId": "",
            "ordIdList": [],
            "algoId": str(next(self._ids)),
            "clOrdId": "",
            "algoClOrdId": str(params.get("algoClOrdId") or ""),
            "sz": str(params["sz"]),
            "closeFraction": "",
            "ordType": "trigger",
            "side": str(params["side"]),
            "posSide": str(params.get("posSide", "net" if swap else "")),
            "tdMode": str(params.get("tdMode", "cash")),
            "tgtCcy": "" if swap else str(params.get("tgtCcy", "")),
            "state": "live",
            "lever": "10" if swap else "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tpOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "slOrdPx": "",
            "triggerPx": str(params["triggerPx"]),
            "triggerPxType": str(params.get("triggerPxType", "last")),
            "ordPx": str(params["orderPx"]),
            "actualSz": "",
            "actualPx": "",
            "actualSide": "",
            "triggerTime": "",
            "tag": str(params.get("tag", "")),
            "reduceOnly": "true" if params.get("reduceOnly") in (True, "true") else "false",
            "failCode": "",
            "last": "",
            "notionalUsd": "",
            "cTime": now,
            "uTime": now,
        }

    @staticmethod
    def _ack(order: Mapping[str, Any], code: str, message: str) -> Json:
        return {
            "algoId": order.get("algoId", "") if code == "0" else "",
            "clOrdId": "",
            "algoClOrdId": order.get("algoClOrdId", ""),
            "tag": order.get("tag", ""),
            "sCode": code,
            "sMsg": message,
        }

    # ---- reading

    def _find(self, params: Mapping[str, Any]) -> Json | None:
        if params.get("algoId"):
            return self.orders.get(str(params["algoId"]))
        client_id = params.get("algoClOrdId")
        return next(
            (o for o in reversed(self.orders.values()) if client_id and o["algoClOrdId"] == client_id), None
        )

    def _get(self, request: RestRequest) -> RestAnswer:
        order = self._find(request.query)
        if order is None:
            return _algo_envelope([], "51603", "Order does not exist")
        return _algo_envelope([order])

    def _pending(self, request: RestRequest) -> RestAnswer:
        query = request.query
        if not query.get("ordType"):
            return _algo_envelope([], "50014", "Parameter ordType can not be empty.")
        kinds = str(query["ordType"]).split(",")
        return _algo_envelope(
            [
                o
                for o in reversed(self._live())
                if o["ordType"] in kinds
                and query.get("instId") in (None, o["instId"])
                and query.get("instType") in (None, o["instType"])
            ]
        )

    def _live(self) -> list[Json]:
        return [o for o in self.orders.values() if o["state"] == "live"]

    # ---- canceling

    def _cancel(self, request: RestRequest) -> RestAnswer:
        body = json.loads(request.body or "[]")
        return _answer_acks([self._cancel_one(item) for item in (body if isinstance(body, list) else [body])])

    def _cancel_one(self, params: Mapping[str, Any]) -> Json:
        order = self._find(params)
        if order is None or order["instId"] != params.get("instId") or order["state"] != "live":
            return {
                "algoId": str(params.get("algoId", "")),
                "algoClOrdId": str(params.get("algoClOrdId", "")),
                "sCode": "51400",
                "sMsg": "Cancellation failed as the order has been filled, canceled or does not exist",
            }
        order.update(state="canceled", uTime=_now())
        self._push(order)
        return {"algoId": order["algoId"], "algoClOrdId": order["algoClOrdId"], "sCode": "0", "sMsg": ""}

    def _push(self, order: Json) -> None:
        self.on_push(order["instType"], order["instId"], dict(order))
