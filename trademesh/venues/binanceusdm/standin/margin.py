"""Binance USD-M's leverage, margin type, positions and liquidations for the replay stand-in.

Enough of Binance's derivatives account to test the connector's margin through ccxt:
- per symbol a leverage (20 until set) and a margin type (CROSSED until set): POST
  /fapi/v1/leverage ({"leverage", "maxNotionalValue", "symbol"}; -4028 "Leverage N is not valid."
  above what the position's bracket allows, or not a whole number from 1), POST
  /fapi/v1/marginType ({"code": 200, "msg": "success"}; -4046 "No need to change margin type.",
  -4047 with open orders, -4048 with a position), GET /fapi/v1/symbolConfig;
- every symbol's notional brackets, Binance's BTCUSDT ones (GET /fapi/v1/leverageBracket:
  [{"symbol", "notionalCoef", "brackets": [{"bracket", "initialLeverage", "notionalCap",
  "notionalFloor", "maintMarginRatio", "cum"}]}]);
- a one-way (BOTH) position per symbol, moved by the order store's fills: GET
  /fapi/v2/positionRisk (leverage, marginType, isolatedMargin, isolatedWallet, markPrice,
  unRealizedProfit, liquidationPrice, notional) and /fapi/v3/positionRisk (initialMargin,
  maintMargin, positionInitialMargin, marginAsset instead of leverage and marginType), the
  account's positions and its assets' margins, and the positions of ACCOUNT_UPDATE events;
- the mark price is the symbol's last `markPriceUpdate` replayed (else the book's mid);
  maintenance margin = notional x maintMarginRatio - cum of the notional's bracket; the
  liquidation price is Binance's one-way formula with the position alone ("MarkLiquidation Price
  Calculation", USDⓈ-M): (WB + cum - side x size x entry) / (size x MMR - side x size), WB the
  isolated wallet (ISOLATED) or the USDT wallet (CROSSED);
- a replayed mark price at or past a position's liquidation price liquidates it: a LIQUIDATION
  order (client order id "autoclose-<ms>", IOC, reduce-only) fills the whole position at its
  bankruptcy price (where its margin is gone: entry -/+ WB / size), with the stand-in's 0.1 %
  commission, reported as Binance reports it (ORDER_TRADE_UPDATE, then ACCOUNT_UPDATE), and
  readable by its order id (GET /fapi/v1/order).
The wallet itself stays the stand-in's fixed one (as for every fill here).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer

__all__ = [
    "BRACKETS",
    "ORDER_UPDATE_FIXED",
    "MarkLiquidation",
    "UsdmAccount",
    "liquidation_order",
    "liquidation_update",
]

# The fields of an ORDER_TRADE_UPDATE's order the stand-in always writes the same: no stop price,
# one-way mode (position side BOTH), no price protection, self-trade prevention, price match or
# good-till date; bid and ask notional "0".
ORDER_UPDATE_FIXED: dict[str, Any] = {
    "sp": "0",
    "b": "0",
    "a": "0",
    "wt": "CONTRACT_PRICE",
    "ps": "BOTH",
    "cp": False,
    "pP": False,
    "si": 0,
    "ss": 0,
    "V": "NONE",
    "pm": "NONE",
    "gtd": 0,
}

D = Decimal
# Binance's BTCUSDT notional brackets: (initialLeverage, notionalFloor, notionalCap, maintMarginRatio, cum).
BRACKETS = (
    (125, D(0), D(50_000), D("0.004"), D(0)),
    (100, D(50_000), D(600_000), D("0.005"), D(50)),
    (75, D(600_000), D(3_000_000), D("0.0065"), D(950)),
    (50, D(3_000_000), D(12_000_000), D("0.01"), D(11_450)),
    (25, D(12_000_000), D(70_000_000), D("0.02"), D(131_450)),
    (20, D(70_000_000), D(100_000_000), D("0.025"), D(481_450)),
    (10, D(100_000_000), D(230_000_000), D("0.05"), D(2_981_450)),
    (5, D(230_000_000), D(480_000_000), D("0.1"), D(14_481_450)),
    (4, D(480_000_000), D(600_000_000), D("0.125"), D(26_481_450)),
    (3, D(600_000_000), D(800_000_000), D("0.15"), D(41_481_450)),
    (2, D(800_000_000), D(1_200_000_000), D("0.25"), D(121_481_450)),
    (1, D(1_200_000_000), D(1_800_000_000), D("0.5"), D(421_481_450)),
)
_DEFAULT_LEVERAGE = 20
_COMMISSION = D("0.001")
_PLACES = D("1e-8")
_MODES = {"ISOLATED": "isolated", "CROSSED": "cross"}


def _text(value: Decimal) -> str:
    return format(value.quantize(_PLACES), "f")


def _error(code: int, message: str) -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": message}, 400)


def bracket_of(notional: Decimal) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
    """The bracket a position's notional (absolute) falls in."""
    return next((b for b in BRACKETS if notional < b[2]), BRACKETS[-1])


def max_notional(leverage: int) -> Decimal:
    """The most notional a position may hold at this leverage (the last bracket allowing it)."""
    return max(b[2] for b in BRACKETS if b[0] >= leverage)


@dataclass
class _Position:
    amount: Decimal = Decimal(0)  # signed
    entry: Decimal = Decimal(0)
    isolated_wallet: Decimal = Decimal(0)  # ISOLATED only: the margin put in
    updated_ms: int = 0


@dataclass
class MarkLiquidation:
    """A position the mark price has liquidated: what the stand-in reports of it."""

    symbol: str
    side: str  # the closing order's: SELL closes a long
    size: Decimal
    price: Decimal  # the bankruptcy price
    commission: Decimal
    realized: Decimal
    order_id: int
    client_order_id: str
    at_ms: int


class UsdmAccount:
    def __init__(self, wallet: Callable[[], Decimal], mark: Callable[[str], Decimal | None]) -> None:
        self.wallet = wallet  # the USDT wallet balance (cross margin's WB)
        self.mark = mark
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}  # ISOLATED or CROSSED
        self.positions: dict[str, _Position] = {}
        self._ids = itertools.count(4_000_000_001)

    # ---- settings

    def set_leverage(self, params: dict[str, str]) -> RestAnswer:
        symbol, text = params.get("symbol", ""), params.get("leverage", "")
        try:
            wanted = D(text)
        except ArithmeticError:
            return _error(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.")
        position = self.positions.get(symbol)
        notional = abs(position.amount * position.entry) if position else D(0)
        most = bracket_of(notional)[0]
        if wanted != wanted.to_integral_value() or not 1 <= wanted <= most:
            return _error(-4028, f"Leverage {text} is not valid.")
        self.leverage[symbol] = int(wanted)
        cap = format(max_notional(int(wanted)), "f")
        return RestAnswer.json({"leverage": int(wanted), "maxNotionalValue": cap, "symbol": symbol})

    def set_margin_type(self, params: dict[str, str], has_open_orders: bool) -> RestAnswer:
        symbol, wanted = params.get("symbol", ""), params.get("marginType", "").upper()
        if wanted not in _MODES:
            return _error(-1116, "Invalid marginType.")
        if self.margin_type.get(symbol, "CROSSED") == wanted:
            return _error(-4046, "No need to change margin type.")
        if has_open_orders:
            return _error(-4047, "Margin type cannot be changed if there exists open orders.")
        if symbol in self.positions:
            return _error(-4048, "Margin type cannot be changed if there exists position.")
        self.margin_type[symbol] = wanted
        return RestAnswer.json({"code": 200, "msg": "success"})

    def symbol_config(self, symbols: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "symbol": symbol,
                "marginType": self.margin_type.get(symbol, "CROSSED"),
                "isAutoAddMargin": "false",
                "leverage": self._leverage_of(symbol),
                "maxNotionalValue": format(max_notional(self._leverage_of(symbol)), "f"),
            }
            for symbol in symbols
        ]

    @staticmethod
    def brackets(symbols: list[str]) -> list[dict[str, Any]]:
        rows = [
            {
                "bracket": n,
                "initialLeverage": lev,
                "notionalCap": int(cap),
                "notionalFloor": int(floor),
                "maintMarginRatio": float(ratio),
                "cum": float(cum),
            }
            for n, (lev, floor, cap, ratio, cum) in enumerate(BRACKETS, 1)
        ]
        return [{"symbol": symbol, "notionalCoef": 1.0, "brackets": rows} for symbol in symbols]

    def _leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, _DEFAULT_LEVERAGE)

    # ---- positions

    def on_fill(self, symbol: str, side: str, size: Decimal, price: Decimal, at_ms: int) -> None:
        """A fill of the order store moves the symbol's one-way position."""
        position = self.positions.setdefault(symbol, _Position())
        signed = size if side == "BUY" else -size
        isolated = self.margin_type.get(symbol) == "ISOLATED"
        if position.amount == 0 or (position.amount > 0) == (signed > 0):
            total = position.amount + signed
            position.entry = (position.entry * abs(position.amount) + price * size) / abs(total)
            position.amount = total
            if isolated:
                position.isolated_wallet += size * price / self._leverage_of(symbol)
        else:
            closed = min(size, abs(position.amount))
            if isolated:
                position.isolated_wallet -= position.isolated_wallet * closed / abs(position.amount)
            position.amount += signed
            if position.amount != 0 and (position.amount > 0) == (signed > 0):
                position.entry = price  # flipped: the rest opened here
                if isolated:
                    position.isolated_wallet = abs(position.amount) * price / self._leverage_of(symbol)
        position.updated_ms = at_ms
        if position.amount == 0:
            del self.positions[symbol]

    def _figures(self, symbol: str, position: _Position) -> dict[str, Decimal]:
        mark = self.mark(symbol) or position.entry
        size, side = abs(position.amount), D(1) if position.amount > 0 else D(-1)
        notional = position.amount * mark
        _, _, _, ratio, cum = bracket_of(abs(notional))
        isolated = self.margin_type.get(symbol) == "ISOLATED"
        wallet = position.isolated_wallet if isolated else self.wallet()
        upnl = position.amount * (mark - position.entry)
        denominator = size * ratio - side * size
        liquidation = (wallet + cum - side * size * position.entry) / denominator
        return {
            "mark": mark,
            "notional": notional,
            "upnl": upnl,
            "initial": abs(notional) / self._leverage_of(symbol),
            "maintenance": abs(notional) * ratio - cum,
            "liquidation": max(liquidation, D(0)),
            "wallet": wallet,
            "isolated_wallet": position.isolated_wallet if isolated else D(0),
            "isolated_margin": position.isolated_wallet + upnl if isolated else D(0),
        }

    def position_risk(self, version: str, symbol: str | None) -> list[dict[str, Any]]:
        """GET /fapi/v2|v3/positionRisk: the open positions (of `symbol`)."""
        rows = []
        for name, position in sorted(self.positions.items()):
            if symbol not in (None, name):
                continue
            f = self._figures(name, position)
            row: dict[str, Any] = {
                "symbol": name,
                "positionSide": "BOTH",
                "positionAmt": _text(position.amount),
                "entryPrice": _text(position.entry),
                "breakEvenPrice": _text(position.entry),
                "markPrice": _text(f["mark"]),
                "unRealizedProfit": _text(f["upnl"]),
                "liquidationPrice": _text(f["liquidation"]),
                "isolatedMargin": _text(f["isolated_margin"]),
                "notional": _text(f["notional"]),
                "isolatedWallet": _text(f["isolated_wallet"]),
                "updateTime": position.updated_ms,
            }
            if version == "v2":
                row.update(
                    leverage=str(self._leverage_of(name)),
                    marginType=_MODES[self.margin_type.get(name, "CROSSED")],
                    isAutoAddMargin="false",
                    maxNotionalValue=format(bracket_of(abs(f["notional"]))[2], "f"),
                    marginAsset="USDT",
                )
            else:
                row.update(
                    marginAsset="USDT",
                    initialMargin=_text(f["initial"]),
                    maintMargin=_text(f["maintenance"]),
                    positionInitialMargin=_text(f["initial"]),
                    openOrderInitialMargin="0",
                    adl=1,
                    bidNotional="0",
                    askNotional="0",
                )
            rows.append(row)
        return rows

    def held_margin(self) -> tuple[Decimal, Decimal, Decimal]:
        """(position initial margin, maintenance margin, unrealised PnL) of every USDT position."""
        figures = [self._figures(name, p) for name, p in self.positions.items()]
        return (
            sum((f["initial"] for f in figures), D(0)),
            sum((f["maintenance"] for f in figures), D(0)),
            sum((f["upnl"] for f in figures), D(0)),
        )

    def update_rows(self, symbol: str) -> list[dict[str, Any]]:
        """The symbol's position as an ACCOUNT_UPDATE's `P` entry (amount 0: closed)."""
        position = self.positions.get(symbol, _Position())
        f = self._figures(symbol, position) if position.amount else None
        return [
            {
                "s": symbol,
                "pa": _text(position.amount),
                "ep": _text(position.entry),
                "bep": _text(position.entry),
                "cr": "0",
                "up": _text(f["upnl"]) if f else "0",
                "mt": _MODES[self.margin_type.get(symbol, "CROSSED")],
                "iw": _text(f["isolated_wallet"]) if f else "0",
                "ps": "BOTH",
            }
        ]

    # ---- liquidation

    def liquidate(self, symbol: str) -> MarkLiquidation | None:
        """The liquidation of the symbol's position when its mark has reached the liquidation
        price (the position is gone after it), else None."""
        position, mark = self.positions.get(symbol), self.mark(symbol)
        if position is None or mark is None:
            return None
        f = self._figures(symbol, position)
        long = position.amount > 0
        if f["liquidation"] <= 0 or (mark > f["liquidation"] if long else mark < f["liquidation"]):
            return None
        size = abs(position.amount)
        bankruptcy = position.entry - f["wallet"] / size if long else position.entry + f["wallet"] / size
        bankruptcy = max(bankruptcy.quantize(_PLACES), D(0))
        realized = position.amount * (bankruptcy - position.entry)
        now = int(time.time() * 1000)
        del self.positions[symbol]
        return MarkLiquidation(
            symbol=symbol,
            side="SELL" if long else "BUY",
            size=size,
            price=bankruptcy,
            commission=(size * bankruptcy * _COMMISSION).quantize(_PLACES),
            realized=realized,
            order_id=next(self._ids),
            client_order_id=f"autoclose-{now}{next(self._ids) % 1000:03d}",
            at_ms=now,
        )


def liquidation_order(event: MarkLiquidation) -> dict[str, Any]:
    """The liquidation as the order store keeps an order (its spot form; futures_order writes it
    as /fapi/v1/order does)."""
    size, quote = _text(event.size), _text(event.size * event.price)
    return {
        "symbol": event.symbol,
        "orderId": event.order_id,
        "orderListId": -1,
        "clientOrderId": event.client_order_id,
        "transactTime": event.at_ms,
        "time": event.at_ms,
        "updateTime": event.at_ms,
        "price": _text(event.price),
        "origQty": size,
        "executedQty": size,
        "cummulativeQuoteQty": quote,
        "status": "FILLED",
        "timeInForce": "IOC",
        "type": "LIQUIDATION",
        "side": event.side,
        "stopPrice": "0",
        "workingTime": event.at_ms,
        "isWorking": False,
        "fills": [],
        "selfTradePreventionMode": "NONE",
    }


def liquidation_update(event: MarkLiquidation, trade_id: int) -> dict[str, Any]:
    """The ORDER_TRADE_UPDATE Binance's user data stream sends for a liquidation."""
    price, size = _text(event.price), _text(event.size)
    order = {
        "s": event.symbol,
        "c": event.client_order_id,
        "S": event.side,
        "o": "LIQUIDATION",
        "f": "IOC",
        "q": size,
        "p": price,
        "ap": price,
        "x": "TRADE",
        "X": "FILLED",
        "i": event.order_id,
        "l": size,
        "z": size,
        "L": price,
        "N": "USDT",
        "n": _text(event.commission),
        "T": event.at_ms,
        "t": trade_id,
        "m": False,
        "R": True,
        "ot": "LIQUIDATION",
        "rp": _text(event.realized),
        **ORDER_UPDATE_FIXED,
    }
    return {"e": "ORDER_TRADE_UPDATE", "E": event.at_ms, "T": event.at_ms, "o": order}
