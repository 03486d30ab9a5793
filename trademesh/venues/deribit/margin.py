"""Deribit's margin figures and liquidations through ccxt (docs/derivatives.md, "Margin and
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
margin ratio empty and Deribit's position does not state it: it is the account's, maintenance
margin / margin balance of the position's coin, from private/get_account_summary (its
maintenance_margin and margin_balance, which under standard margin is the equity; Deribit's own
"maintenance margin" percentage), read with the positions (MarginRules.account_ratios).
- A liquidation: Deribit's own order (is_liquidation true) and its trades, which carry
  `liquidation` ("M", "T" or "MT": which side of the trade was liquidated; absent otherwise).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trademesh.core.domain.matching.margin import margin_ratio
from trademesh.core.domain.model import MarginMode
from trademesh.venues.live.margin import Call, MarginRules
from trademesh.venues.live.normalize import decimal_text

__all__ = ["DeribitMargin", "summary_ratio"]


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

    async def account_ratios(self, exchange: Any, assets: set[str], call: Call[Any]) -> dict[str, Decimal]:
        """Each coin's maintenance_margin / margin_balance, from private/get_account_summary (ccxt's
        fetch_balance with the coin's code keeps it as `info`)."""
        ratios: dict[str, Decimal] = {}
        for asset in sorted(assets):
            balance = await call(functools.partial(exchange.fetch_balance, {"code": asset}))
            ratio = summary_ratio(balance.get("info") or {})
            if ratio is not None:
                ratios[asset] = ratio
        return ratios


def summary_ratio(summary: Mapping[str, Any]) -> Decimal | None:
    """An account summary's maintenance margin over its margin balance; None where either is
    absent or the balance is not positive."""
    maintenance = decimal_text(summary.get("maintenance_margin"))
    balance = decimal_text(summary.get("margin_balance"))
    if not maintenance or not balance:
        return None
    return margin_ratio(Decimal(maintenance), Decimal(balance))
