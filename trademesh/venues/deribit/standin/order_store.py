"""A small Deribit account for the replay stand-in: orders, fills, positions, balances.

Enough of an exchange to test TradeFlow through the real ccxt client, in Deribit's
JSON-RPC v2 formats (the same results whether asked over REST or the WebSocket):

- private/buy and private/sell place an order; the client order id is Deribit's `label`.
  Like real Deribit, a second order with a label already in use is *accepted* (Deribit
  does not enforce unique labels): the connector looks the label up before placing
  (`LiveSpec.unique_client_ids = False`), the stand-in does not fake a rejection.
- A marketable order (a market order, a limit buy at or above the best ask, a limit sell at
  or below the best bid of the book the stand-in tracks at the replay position) fills at
  once, entirely, at the best opposite price (no walk through the depth: a simplification);
  a market order with no opposite side is cancelled unfilled. Anything else rests until
  cancelled.
- Fees: Deribit's option taker fee, 0.0003 of the underlying per contract capped at 12.5 %
  of the premium, in the base currency. Futures and perpetuals (inverse: BTC-PERPETUAL's
  amount is USD, settled in BTC) pay Deribit's taker fee, 0.05 % of the amount's worth in the
  coin (amount / price), rounded to 1e-8 (a satoshi: a simplification).
- A future's fill moves no premium: the cash pays its fee, and a fill that reduces the
  position realises amount x (1/average - 1/price) of the coin (long; the mirror for a short),
  the average the harmonic mean of the fills' prices.
- Options are inverse-priced: amounts in contracts (one unit of the underlying), prices in
  the base currency. A fill moves the cash balance by the premium and the fee; a resting buy
  reserves its premium (reported as initial and maintenance margin: a simplification).
  Positions are signed sizes (negative: short) with their average price.
- An inverse future's margin figures are reckoned at the mark (trademesh.venues.deribit.standin.margin):
  floating_profit_loss, initial_margin, maintenance_margin, leverage and
  estimated_liquidation_price in get_positions, the futures' margins and floating profit in the
  account summary's equity and margins; a mark at or past a position's estimated liquidation
  price liquidates it (`liquidate`): a market order of Deribit's (is_liquidation true, no label)
  closes it at the mark with the taker fee, its trade flagged `liquidation` "T".
- Errors are Deribit's own: 10004 order_not_found, 11044 not_open_order, -32602 invalid params.

Every change goes out through `on_change(order, trades)` (the stand-in turns it into the
user.orders and user.trades notifications).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trademesh.venues.deribit.standin.margin import future_margin

__all__ = ["BestPrices", "DeribitOrderStore", "RpcError", "instrument_currency", "instrument_kind"]

# Starting cash per currency (equity before any fill).
START_BALANCES = {"BTC": Decimal("1.5"), "ETH": Decimal("20")}
OPTION_FEE_PER_CONTRACT = Decimal("0.0003")
OPTION_FEE_CAP = Decimal("0.125")  # of the premium
FUTURE_TAKER_FEE = Decimal("0.0005")  # of the amount's worth in the coin (Deribit's fee schedule)
_SATOSHI = Decimal("1e-8")
_ZERO = Decimal(0)
# The best bid and ask of an instrument at the replay position (None: that side is empty).
BestPrices = Callable[[str], tuple[Decimal | None, Decimal | None]]
OnChange = Callable[[dict[str, Any], list[dict[str, Any]]], None]
# The mark price of an instrument at the replay position (None: not known).
Marks = Callable[[str], Decimal | None]


@dataclass(frozen=True)
class RpcError(Exception):
    """A JSON-RPC error as Deribit answers it."""

    code: int
    message: str

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def instrument_currency(instrument: str) -> str:
    return instrument.split("-", 1)[0]


def instrument_kind(instrument: str) -> str:
    """Deribit's kind: "option" for BTC-24SEP21-8000-P, else "future" (BTC-PERPETUAL, BTC-24SEP21)."""
    return "option" if len(instrument.split("-")) == 4 else "future"


def _number(value: Decimal) -> float | int:
    """A JSON number as Deribit writes it (its shortest decimal form)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Position:
    size: Decimal = _ZERO
    average: Decimal = _ZERO
    realized: Decimal = _ZERO

    def add(self, signed: Decimal, price: Decimal) -> None:
        """A fill of `signed` contracts at `price` (premium: realized when a position shrinks)."""
        if self.size == 0 or (self.size > 0) == (signed > 0):
            total = self.size + signed
            self.average = (self.average * abs(self.size) + price * abs(signed)) / abs(total)
            self.size = total
            return
        closed = min(abs(signed), abs(self.size))
        direction = 1 if self.size > 0 else -1
        self.realized += (price - self.average) * closed * direction
        self.size += signed
        if self.size == 0:
            self.average = _ZERO
        elif (self.size > 0) != (direction > 0):
            self.average = price


@dataclass
class _FuturePosition:
    """An inverse future's position: `size` USD (signed), `coin` what it cost in the coin (signed)."""

    size: Decimal = _ZERO
    coin: Decimal = _ZERO

    @property
    def average(self) -> Decimal:
        return abs(self.size) / abs(self.coin) if self.coin else _ZERO

    def add(self, signed: Decimal, price: Decimal) -> Decimal:
        """A fill of `signed` USD at `price`; the coin it realises (a reducing fill's)."""
        if self.size == 0 or (self.size > 0) == (signed > 0):
            self.size, self.coin = self.size + signed, self.coin + signed / price
            return _ZERO
        closed = min(abs(signed), abs(self.size))
        direction = 1 if self.size > 0 else -1
        released = self.coin * closed / abs(self.size)
        realized = released - direction * closed / price
        self.coin -= released
        self.size -= direction * closed
        rest = abs(signed) - closed
        if rest:  # flipped: the rest opens the other side at this price
            self.size, self.coin = -direction * rest, -direction * rest / price
        return realized


class DeribitOrderStore:
    def __init__(self, best: BestPrices, mark: Marks = lambda instrument: None) -> None:
        self.best = best
        self.mark = mark
        self.on_change: OnChange = lambda order, trades: None
        self.orders: dict[str, dict[str, Any]] = {}
        self.cash = dict(START_BALANCES)
        self.positions: dict[str, _Position] = {}
        self.futures: dict[str, _FuturePosition] = {}
        self._order_ids = itertools.count(1_000)
        self._trade_ids = itertools.count(90_000)
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "private/buy": lambda p: self.place(p, "buy"),
            "private/sell": lambda p: self.place(p, "sell"),
            "private/cancel": self._cancel_one,
            "private/cancel_all": lambda p: self._cancel_where(lambda o: True),
            "private/cancel_all_by_currency": self._cancel_all_by_currency,
            "private/cancel_all_by_instrument": self._cancel_all_by_instrument,
            "private/get_open_orders_by_currency": self._open_by_currency,
            "private/get_open_orders_by_instrument": self._open_by_instrument,
            "private/get_order_state": lambda p: self._find(str(p.get("order_id"))),
            "private/get_order_state_by_label": self._by_label,
            "private/get_account_summary": lambda p: self.summary(_required(p, "currency")),
            "private/get_account_summaries": lambda p: {
                "summaries": [self.summary(c) for c in sorted(self.cash)]
            },
            "private/get_positions": self._positions,
            "private/get_position": lambda p: self.position(_required(p, "instrument_name")),
        }

    def handles(self, method: str) -> bool:
        return method in self._methods

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """The result of a private method; raises RpcError as Deribit would answer."""
        return self._methods[method](params)

    # ---- placing

    def place(self, params: dict[str, Any], direction: str) -> dict[str, Any]:
        instrument = _required(params, "instrument_name")
        order_type = str(params.get("type") or "limit")
        if order_type not in ("limit", "market"):
            raise RpcError(-32602, f"Invalid params: type {order_type} is not supported by the stand-in")
        amount = Decimal(_required(params, "amount"))
        price = Decimal(_required(params, "price")) if order_type == "limit" else None
        order = self._new_order(instrument, direction, order_type, amount, price, params)
        trades = self._execute(order, amount, price)
        self.on_change(order, trades)
        return {"order": order, "trades": trades}

    def _new_order(
        self,
        instrument: str,
        direction: str,
        order_type: str,
        amount: Decimal,
        price: Decimal | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        now = _now_ms()
        order: dict[str, Any] = {
            "order_id": f"{instrument_currency(instrument)}-{next(self._order_ids)}",
            "label": str(params.get("label") or ""),
            "instrument_name": instrument,
            "direction": direction,
            "order_type": order_type,
            "order_state": "open",
            "time_in_force": str(params.get("time_in_force") or "good_til_cancelled"),
            "price": _number(price) if price is not None else "market_price",
            "amount": _number(amount),
            "filled_amount": 0,
            "average_price": 0,
            "commission": 0,
            "post_only": _flag(params.get("post_only")),
            "reduce_only": _flag(params.get("reduce_only")),
            "replaced": False,
            "is_liquidation": False,
            "api": True,
            "web": False,
            "max_show": _number(amount),
            "profit_loss": 0,
            "creation_timestamp": now,
            "last_update_timestamp": now,
        }
        self.orders[order["order_id"]] = order
        return order

    def _execute(self, order: dict[str, Any], amount: Decimal, price: Decimal | None) -> list[dict[str, Any]]:
        """Fill a marketable order at the best opposite price; a market order that cannot is cancelled."""
        bid, ask = self.best(order["instrument_name"])
        buying = order["direction"] == "buy"
        opposite = ask if buying else bid
        if opposite is None:
            if price is None:
                order["order_state"] = "cancelled"
            return []
        crosses = price is None or (price >= opposite if buying else price <= opposite)
        return [self._fill(order, amount, opposite)] if crosses else []

    def _fill(self, order: dict[str, Any], amount: Decimal, price: Decimal) -> dict[str, Any]:
        instrument = order["instrument_name"]
        currency = instrument_currency(instrument)
        signed = amount if order["direction"] == "buy" else -amount
        if instrument_kind(instrument) == "future":
            fee = (amount / price * FUTURE_TAKER_FEE).quantize(_SATOSHI)
            realized = self.futures.setdefault(instrument, _FuturePosition()).add(signed, price)
            self.cash[currency] = self.cash.get(currency, _ZERO) + realized - fee
        else:
            premium = price * amount
            fee = min(OPTION_FEE_PER_CONTRACT * amount, OPTION_FEE_CAP * premium)
            self.cash[currency] = self.cash.get(currency, _ZERO) - price * signed - fee
            self.positions.setdefault(instrument, _Position()).add(signed, price)
        now = _now_ms()
        order.update(
            order_state="filled",
            filled_amount=_number(amount),
            average_price=_number(price),
            commission=_number(fee),
            last_update_timestamp=now,
        )
        trade_id = next(self._trade_ids)
        return {
            "trade_id": f"{currency}-{trade_id}",
            "trade_seq": trade_id,
            "timestamp": now,
            "tick_direction": 0,
            "state": "filled",
            "self_trade": False,
            "reduce_only": order["reduce_only"],
            "post_only": order["post_only"],
            "price": _number(price),
            "amount": _number(amount),
            "direction": order["direction"],
            "order_id": order["order_id"],
            "order_type": order["order_type"],
            "label": order["label"],
            "matching_id": None,
            "liquidity": "T",
            "instrument_name": instrument,
            "index_price": 0,
            "mark_price": _number(price),
            "fee": _number(fee),
            "fee_currency": currency,
            "profit_loss": 0,
        }

    # ---- cancelling

    def _cancel_one(self, params: dict[str, Any]) -> dict[str, Any]:
        order = self._find(_required(params, "order_id"))
        if order["order_state"] != "open":
            raise RpcError(11044, "not_open_order")
        return self._cancel(order)

    def _cancel(self, order: dict[str, Any]) -> dict[str, Any]:
        order.update(order_state="cancelled", last_update_timestamp=_now_ms())
        self.on_change(order, [])
        return order

    def _cancel_where(self, chosen: Callable[[dict[str, Any]], bool]) -> int:
        """Deribit's cancel_all* answer: how many orders were cancelled."""
        found = [o for o in self._open() if chosen(o)]
        for order in found:
            self._cancel(order)
        return len(found)

    def _cancel_all_by_currency(self, params: dict[str, Any]) -> int:
        currency = _required(params, "currency")
        return self._cancel_where(lambda o: instrument_currency(o["instrument_name"]) == currency)

    def _cancel_all_by_instrument(self, params: dict[str, Any]) -> int:
        instrument = _required(params, "instrument_name")
        return self._cancel_where(lambda o: o["instrument_name"] == instrument)

    # ---- queries

    def _find(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise RpcError(10004, "order_not_found")
        return order

    def _open(self) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["order_state"] == "open"]

    def _open_by_currency(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        currency, kind = _required(params, "currency"), params.get("kind")
        return [
            o
            for o in self._open()
            if instrument_currency(o["instrument_name"]) == currency
            and kind in (None, "any", instrument_kind(o["instrument_name"]))
        ]

    def _open_by_instrument(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        instrument = _required(params, "instrument_name")
        return [o for o in self._open() if o["instrument_name"] == instrument]

    def _by_label(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        currency, label = _required(params, "currency"), _required(params, "label")
        return [
            o
            for o in self.orders.values()
            if o["label"] == label and instrument_currency(o["instrument_name"]) == currency
        ]

    def reserved(self, currency: str) -> Decimal:
        """The premium resting buy orders would pay (what they hold back from available funds)."""
        return sum(
            (
                Decimal(str(o["price"])) * Decimal(str(o["amount"]))
                for o in self._open()
                if o["direction"] == "buy" and instrument_currency(o["instrument_name"]) == currency
            ),
            _ZERO,
        )

    def summary(self, currency: str) -> dict[str, Any]:
        if currency not in self.cash:
            raise RpcError(-32602, "Invalid params")
        balance, margin = self.cash[currency], self.reserved(currency)
        floating, initial, maintenance = self._futures_margin(currency)
        equity = balance + floating
        return {
            "currency": currency,
            "balance": _number(balance),
            "equity": _number(equity),
            "margin_balance": _number(equity),
            "available_funds": _number(equity - margin - initial),
            "available_withdrawal_funds": _number(min(balance, equity) - margin - initial),
            "initial_margin": _number(margin + initial),
            "maintenance_margin": _number(margin + maintenance),
            "total_pl": _number(floating),
            "session_upl": _number(floating),
            "session_rpl": 0,
            "delta_total": 0,
            "options_pl": 0,
            "futures_pl": _number(floating),
            "portfolio_margining_enabled": False,
        }

    def position(self, instrument: str) -> dict[str, Any]:
        future = self.futures.get(instrument)
        if future is not None:
            return self._future_position(instrument, future)
        held = self.positions.get(instrument, _Position())
        return {
            "instrument_name": instrument,
            "kind": instrument_kind(instrument),
            "direction": "sell" if held.size < 0 else ("buy" if held.size > 0 else "zero"),
            "size": _number(held.size),
            "size_currency": _number(held.size),
            "average_price": _number(held.average),
            "realized_profit_loss": _number(held.realized),
            "floating_profit_loss": 0,
            "total_profit_loss": _number(held.realized),
            "mark_price": _number(held.average),
            "index_price": 0,
            "delta": _number(held.size),
            "initial_margin": 0,
            "maintenance_margin": 0,
            "settlement_price": 0,
        }

    def _mark_of(self, instrument: str, held: _FuturePosition) -> Decimal:
        """The instrument's mark at the replay position, else the position's average price."""
        return self.mark(instrument) or held.average.quantize(Decimal("0.01"))

    def _futures_margin(self, currency: str) -> tuple[Decimal, Decimal, Decimal]:
        """(floating profit, initial margin, maintenance margin) of the coin's open futures."""
        totals = [_ZERO, _ZERO, _ZERO]
        for instrument, held in self.futures.items():
            if held.size == 0 or instrument_currency(instrument) != currency:
                continue
            figures = future_margin(
                held.size, held.coin, self.cash[currency], self._mark_of(instrument, held)
            )
            totals = [
                totals[0] + figures.floating,
                totals[1] + figures.initial,
                totals[2] + figures.maintenance,
            ]
        return totals[0], totals[1], totals[2]

    def _future_position(self, instrument: str, held: _FuturePosition) -> dict[str, Any]:
        """An inverse future's: size in USD, size_currency in the coin it is worth at the mark,
        its margins at the mark (trademesh.venues.deribit.standin.margin)."""
        mark = self._mark_of(instrument, held)
        cash = self.cash.get(instrument_currency(instrument), _ZERO)
        figures = future_margin(held.size, held.coin, cash, mark) if held.size else None
        liquidation = figures.liquidation if figures is not None else None
        return {
            "instrument_name": instrument,
            "kind": "future",
            "direction": "sell" if held.size < 0 else ("buy" if held.size > 0 else "zero"),
            "size": _number(held.size),
            "size_currency": _number((held.size / mark).quantize(_SATOSHI)),
            "average_price": _number(held.average.quantize(Decimal("0.01"))),
            "realized_profit_loss": 0,
            "floating_profit_loss": _number(figures.floating) if figures else 0,
            "total_profit_loss": _number(figures.floating) if figures else 0,
            "mark_price": _number(mark),
            "index_price": _number(mark),
            "delta": _number((held.size / mark).quantize(_SATOSHI)),
            "initial_margin": _number(figures.initial) if figures else 0,
            "maintenance_margin": _number(figures.maintenance) if figures else 0,
            "settlement_price": 0,
            "leverage": figures.leverage if figures else 0,
            "estimated_liquidation_price": _number(liquidation) if liquidation is not None else None,
        }

    # ---- liquidation

    def liquidate(self, instrument: str) -> bool:
        """Close the instrument's future by Deribit's own market order when the mark has reached
        its estimated liquidation price (True: done)."""
        held, mark = self.futures.get(instrument), self.mark(instrument)
        if held is None or held.size == 0 or mark is None:
            return False
        cash = self.cash.get(instrument_currency(instrument), _ZERO)
        limit = future_margin(held.size, held.coin, cash, mark).liquidation
        if limit is None or (mark > limit if held.size > 0 else mark < limit):
            return False
        amount = abs(held.size)
        order = self._new_order(
            instrument, "sell" if held.size > 0 else "buy", "market", amount, None, {"reduce_only": True}
        )
        order.update(is_liquidation=True, api=False)
        trade = self._fill(order, amount, mark)
        trade["liquidation"] = "T"  # the account's side was the taker
        self.on_change(order, [trade])
        return True

    def _positions(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        currency, kind = params.get("currency"), params.get("kind")
        sizes = {i: p.size for i, p in self.positions.items()} | {i: p.size for i, p in self.futures.items()}
        return [
            self.position(instrument)
            for instrument, size in sizes.items()
            if size != 0
            and currency in (None, "any", instrument_currency(instrument))
            and kind in (None, "any", instrument_kind(instrument))
        ]


def _required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise RpcError(-32602, f"Invalid params: {name} is required")
    return str(value)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
