"""OKX swaps' leverage, margin mode and margin figures through ccxt (docs/derivatives.md, "Margin and
liquidation: the live venues").

OKX keeps a leverage per instrument and margin mode (POST /api/v5/account/set-leverage {instId,
lever, mgnMode}, ccxt set_leverage with marginMode; GET /api/v5/account/leverage-info, ccxt
fetch_leverage), but no margin mode per instrument: each order names its own (tdMode cross or
isolated) and its position is held so. The connector keeps the mode SetLeverage chose per symbol
and sends it as every order's tdMode (ccxt's marginMode param). A restarted connector reads the
mode back from the exchange before the symbol's first order or GetLeverage (MarginRules.recall):
the mgnMode of the symbol's open position (GET /api/v5/account/positions?instId), else the tdMode
of its pending orders (GET /api/v5/trade/orders-pending?instId), else cross. OKX holds a leverage
for each mode (leverage-info takes the mode asked) but no mode of an instrument with neither a
position nor an order, so a mode set on an instrument left flat and without orders reads back
cross after a restart.
- The most a symbol allows is its first position tier's maxLever (GET
  /api/v5/public/position-tiers, ccxt fetch_market_leverage_tiers); above it is refused here
  naming `leverage`, and OKX's own refusal (59102 "Leverage exceeds the maximum leverage") is
  too. OKX takes a fractional leverage (lever "2.5"); at least 0.01.
- Positions: GET /api/v5/account/positions (ccxt fetch_positions): markPx, lever, mgnMode, imr
  (cross) or margin (isolated), mmr, upl, liqPx; ccxt's marginRatio is mmr over the position's
  margin plus upl (OKX's own mgnRatio is the inverse, in times, and is not used).
- Balances: a currency's imr (the cross positions' initial margin; Balance.position_margin).
- A liquidation: an `orders` push (and fill) of category full_liquidation or
  partial_liquidation (OKX "Order channel": category).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import ccxt.pro

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import LeverageSetting, MarginMode
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.venues.live.convert import safe_message
from trademesh.venues.live.margin import Call, MarginRules, mode_of, positive_or_none

__all__ = ["OkxSwapMargin"]

_LIQUIDATIONS = ("full_liquidation", "partial_liquidation")
_SMALLEST = Decimal("0.01")


async def _set(exchange: Any, leverage: Decimal, symbol: str, mode: MarginMode) -> Any:
    """POST /api/v5/account/set-leverage; ccxt words OKX's 59102 (above the maximum) and 59000
    (positions or open orders block the setting) as plain ExchangeErrors."""
    try:
        return await exchange.set_leverage(float(leverage), symbol, {"marginMode": mode.value})
    except ccxt.ExchangeError as exc:
        text = safe_message(exc, [])
        if "59102" in text:
            raise InvalidArgument.field("leverage", f"OKX refused it: {text}") from exc
        if "59000" in text or "59001" in text:
            raise FailedPrecondition(f"leverage not changed: {text}") from exc
        raise


async def _held_mode(exchange: Any, symbol: str, call: Call[Any]) -> MarginMode | None:
    """The mode the exchange holds the symbol in: its open position's mgnMode (the largest, should
    OKX hold it both ways), else its pending orders' tdMode; None with neither."""
    positions = await call(lambda: exchange.fetch_positions([symbol]))
    held = [p for p in positions if p.get("symbol") == symbol and p.get("contracts")]
    held.sort(key=lambda p: abs(float(p.get("contracts") or 0)), reverse=True)
    for position in held:
        mode = mode_of(position.get("marginMode") or (position.get("info") or {}).get("mgnMode"))
        if mode is not None:
            return mode
    for order in await call(lambda: exchange.fetch_open_orders(symbol)):
        mode = mode_of((order.get("info") or {}).get("tdMode"))
        if mode is not None:
            return mode
    return None


class OkxSwapMargin(MarginRules):
    modes = (MarginMode.CROSS, MarginMode.ISOLATED)

    def __init__(self) -> None:
        self._modes: dict[str, MarginMode] = {}  # the mode SetLeverage chose, by symbol

    def mode_of(self, symbol: str) -> MarginMode:
        return self._modes.get(symbol, MarginMode.CROSS)

    async def recall(self, exchange: Any, symbol: str, call: Call[Any]) -> None:
        if symbol in self._modes:
            return
        held = await _held_mode(exchange, symbol, call)
        self._modes.setdefault(symbol, held or MarginMode.CROSS)  # unless SetLeverage chose meanwhile

    async def set_leverage(
        self, exchange: Any, symbol: str, leverage: Decimal, mode: MarginMode | None, call: Call[Any]
    ) -> LeverageSetting:
        if mode is None:
            await self.recall(exchange, symbol, call)
        mode = mode or self.mode_of(symbol)
        most = await self._max_leverage(exchange, symbol, mode, call)
        if leverage < _SMALLEST or (most is not None and leverage > most):
            top = format_decimal(most) if most is not None else "the symbol's maximum"
            raise InvalidArgument.field(
                "leverage",
                f"OKX takes a leverage from 0.01 to {top} for {symbol} ({mode.value}: its first "
                f"position tier), got {format_decimal(leverage)}",
            )
        await call(lambda: _set(exchange, leverage, symbol, mode))
        self._modes[symbol] = mode
        return await self._read(exchange, symbol, mode, most, call)

    async def leverage(self, exchange: Any, symbol: str, call: Call[Any]) -> LeverageSetting:
        await self.recall(exchange, symbol, call)
        mode = self.mode_of(symbol)
        most = await self._max_leverage(exchange, symbol, mode, call)
        return await self._read(exchange, symbol, mode, most, call)

    @staticmethod
    async def _read(
        exchange: Any, symbol: str, mode: MarginMode, most: Decimal | None, call: Call[Any]
    ) -> LeverageSetting:
        """GET /api/v5/account/leverage-info for the mode: its `lever`, as OKX writes it (ccxt's
        longLeverage is a whole number)."""
        found = await call(lambda: exchange.fetch_leverage(symbol, {"marginMode": mode.value}))
        rows = found.get("info") or [{}]
        lever = positive_or_none(rows[0].get("lever")) or positive_or_none(found.get("longLeverage"))
        return LeverageSetting(symbol=symbol, leverage=lever or Decimal(1), mode=mode, max_leverage=most)

    @staticmethod
    async def _max_leverage(exchange: Any, symbol: str, mode: MarginMode, call: Call[Any]) -> Decimal | None:
        tiers = await call(lambda: exchange.fetch_market_leverage_tiers(symbol, {"marginMode": mode.value}))
        return positive_or_none(tiers[0].get("maxLeverage")) if tiers else None

    def order_params(self, symbol: str) -> dict[str, Any]:
        return {"marginMode": self.mode_of(symbol).value}

    def raw_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "markPrice": info.get("markPx"),
            "leverage": info.get("lever"),
            "marginMode": info.get("mgnMode"),
            "initialMargin": info.get("imr") or info.get("margin"),
            "maintenanceMargin": info.get("mmr"),
            "unrealizedPnl": info.get("upl"),
            "liquidationPrice": info.get("liqPx"),
        }

    def liquidation(self, info: Mapping[str, Any]) -> bool:
        return info.get("category") in _LIQUIDATIONS

    def position_margins(self, balance: Mapping[str, Any]) -> dict[str, Decimal]:
        """The details' imr by currency (GET /api/v5/account/balance), where held."""
        margins: dict[str, Decimal] = {}
        for account in balance.get("data") or []:
            for detail in account.get("details") or []:
                held = positive_or_none(detail.get("imr"))
                if held is not None:
                    margins[str(detail.get("ccy"))] = held
        return margins
