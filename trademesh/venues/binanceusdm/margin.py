"""Binance USD-M's leverage, margin type and margin figures through ccxt (docs/derivatives.md, "Margin
and liquidation: the live venues").

Binance keeps a leverage (a whole number) and a margin type (CROSSED or ISOLATED) per symbol:
- the most a symbol allows is its first notional bracket's `initialLeverage` (GET
  /fapi/v1/leverageBracket, ccxt fetch_leverage_tiers); a higher or fractional leverage is refused
  here, naming `leverage`, before Binance would (-4028 "Leverage N is not valid");
- POST /fapi/v1/marginType (ccxt set_margin_mode; -4046 "No need to change margin type" is
  taken as done, -4047/-4048 with open orders or a position are FAILED_PRECONDITION), then POST
  /fapi/v1/leverage (ccxt set_leverage); the setting is read back from GET /fapi/v1/symbolConfig
  (ccxt fetch_leverage).
- Positions: GET /fapi/v2/positionRisk (ccxt fetch_positions with useV2, LiveSpec.options), which
  states the position's leverage and marginType besides markPrice, unRealizedProfit,
  liquidationPrice and isolatedMargin; ccxt reckons initialMargin (notional / leverage),
  maintenanceMargin (the bracket's maintMarginRatio x notional) and marginRatio from them.
- Balances: the account's assets state positionInitialMargin (Balance.position_margin).
- A liquidation of the account's position comes on the user data stream as an
  ORDER_TRADE_UPDATE whose order type is LIQUIDATION and client order id "autoclose-..."
  (Binance's "User Data Streams: Event: Order Update").
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

__all__ = ["BinanceUsdmMargin"]

_LIQUIDATION_PREFIX = "autoclose-"


async def _set_margin_mode(exchange: Any, mode: MarginMode, symbol: str) -> Any:
    """POST /fapi/v1/marginType, done when the mode is in force already; ccxt words Binance's
    -4047 (open orders) and -4048 (a position) as BadRequest: they refuse the account's state,
    not the request."""
    try:
        return await exchange.set_margin_mode(mode.value, symbol)
    except ccxt.MarginModeAlreadySet:  # -4046 "No need to change margin type.": in force already
        return None
    except ccxt.BadRequest as exc:
        raise FailedPrecondition(f"margin mode not changed: {safe_message(exc, [])}") from exc


class BinanceUsdmMargin(MarginRules):
    modes = (MarginMode.CROSS, MarginMode.ISOLATED)

    async def set_leverage(
        self, exchange: Any, symbol: str, leverage: Decimal, mode: MarginMode | None, call: Call[Any]
    ) -> LeverageSetting:
        most = await self._max_leverage(exchange, symbol, call)
        if leverage != leverage.to_integral_value() or (most is not None and leverage > most):
            top = format_decimal(most) if most is not None else "the symbol's maximum"
            raise InvalidArgument.field(
                "leverage",
                f"Binance USD-M takes a whole leverage from 1 to {top} for {symbol} (its first "
                f"leverage bracket), got {format_decimal(leverage)}",
            )
        if mode is not None:
            await call(lambda: _set_margin_mode(exchange, mode, symbol))
        await call(lambda: exchange.set_leverage(int(leverage), symbol))
        return await self._read(exchange, symbol, most, call)

    async def leverage(self, exchange: Any, symbol: str, call: Call[Any]) -> LeverageSetting:
        return await self._read(exchange, symbol, await self._max_leverage(exchange, symbol, call), call)

    async def _read(
        self, exchange: Any, symbol: str, most: Decimal | None, call: Call[Any]
    ) -> LeverageSetting:
        found = await call(lambda: exchange.fetch_leverage(symbol))
        return LeverageSetting(
            symbol=symbol,
            leverage=positive_or_none(found.get("longLeverage")) or Decimal(1),
            mode=mode_of(found.get("marginMode")) or MarginMode.CROSS,
            max_leverage=most,
        )

    @staticmethod
    async def _max_leverage(exchange: Any, symbol: str, call: Call[Any]) -> Decimal | None:
        """The symbol's first bracket's initialLeverage (GET /fapi/v1/leverageBracket)."""
        tiers = await call(lambda: exchange.fetch_leverage_tiers([symbol]))
        first = (tiers.get(symbol) or [None])[0]
        return positive_or_none(first.get("maxLeverage")) if first else None

    def raw_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """positionRisk's own fields, v2's and v3's."""
        return {
            "markPrice": info.get("markPrice"),
            "leverage": info.get("leverage"),
            "marginMode": info.get("marginType"),
            "initialMargin": info.get("initialMargin") or info.get("positionInitialMargin"),
            "maintenanceMargin": info.get("maintMargin"),
            "unrealizedPnl": info.get("unRealizedProfit"),
            "liquidationPrice": info.get("liquidationPrice"),
        }

    def liquidation(self, info: Mapping[str, Any]) -> bool:
        """An ORDER_TRADE_UPDATE's order ("o": LIQUIDATION, "c": autoclose-...), or a REST order
        answer of one (type / origType LIQUIDATION, clientOrderId autoclose-...)."""
        kinds = {info.get("o"), info.get("ot"), info.get("type"), info.get("origType")}
        client = str(info.get("c") or info.get("clientOrderId") or "")
        return "LIQUIDATION" in kinds or client.startswith(_LIQUIDATION_PREFIX)

    def position_margins(self, balance: Mapping[str, Any]) -> dict[str, Decimal]:
        """The account's assets' positionInitialMargin (GET /fapi/v2|v3/account), where held."""
        margins: dict[str, Decimal] = {}
        for asset in balance.get("assets") or []:
            held = positive_or_none(asset.get("positionInitialMargin"))
            if held is not None:
                margins[str(asset.get("asset"))] = held
        return margins
