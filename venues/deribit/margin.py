"""Deribit's margin figures and liquidations through ccxt (docs/venues.md, "Margin and
liquidation: the live venues").

Deribit keeps no leverage and no margin mode per instrument: under its standard margin the
account's equity in a coin (cash plus the floating profit and loss of its futures) backs every
position in that coin, each holding an initial and a maintenance margin of its size at the mark
(for BTC futures 2 % and 1.5 %, plus 0.5 % per 100 BTC: Deribit's futures contract
specification), and positions are reduced when the equity falls to the maintenance margin. So
its capabilities say leverage false with no margin modes (SetLeverage and GetLeverage answer
UNIMPLEMENTED), liquidates true; its positions report what Deribit states of them (private/
get_positions: mark_price, leverage, initial_margin, maintenance_margin, floating_profit_loss,
estimated_liquidation_price; ccxt's unified fields), as cross margin in the coin. ccxt leaves the
margin ratio empty and Deribit's position does not state the account's equity it would need:
it stays empty.
- A liquidation: Deribit's own order (is_liquidation true) and its trades, which carry
  `liquidation` ("M", "T" or "MT": which side of the trade was liquidated; absent otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.foundations.model import MarginMode
from venues.live.margin import MarginRules

__all__ = ["DeribitMargin"]


class DeribitMargin(MarginRules):
    modes: tuple[MarginMode, ...] = ()  # no leverage to set: the account's equity backs it all

    def raw_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "markPrice": info.get("mark_price"),
            "leverage": info.get("leverage"),
            "marginMode": MarginMode.CROSS.value,
            "initialMargin": info.get("initial_margin"),
            "maintenanceMargin": info.get("maintenance_margin"),
            "unrealizedPnl": info.get("floating_profit_loss"),
            "liquidationPrice": info.get("estimated_liquidation_price"),
        }

    def liquidation(self, info: Mapping[str, Any]) -> bool:
        return info.get("is_liquidation") is True or info.get("liquidation") in ("M", "T", "MT")
