"""ccxt.pro okx, mended where it falls short of what the connector needs from OKX's API v5.

- Placing and canceling: OKX answers POST /trade/order (and /trade/batch-orders, ccxt's
  default) and /trade/cancel-order with the ids and sCode only, so ccxt's order carries no
  size, price or state. The order is read back (GET /trade/order by ordId); if that read
  fails, the ids are completed with what was asked (state open, or canceled).
- Cancel-all: ccxt's okx has no cancel_all_orders (OKX's mass-cancel is for options only).
  It is done as OKX's own clients do: list the live orders (GET /trade/orders-pending), then
  cancel them in batches of 20 (POST /trade/cancel-batch-orders, OKX's limit per call).
- Fills from the `orders` channel: OKX writes `fillFee` negative when charged (positive for
  a rebate); ccxt's order_to_trade passes it on as it is, unlike its REST parsers,
  which turn it into a positive cost. The cost is negated here to match.
- A market order on swaps: ccxt sends OKX's `optimal_limit_ioc` (a market IOC) and hands
  the type back unmapped; it is read back as a market IOC order.
- Positions: OKX's `realizedPnl` includes fees and funding; the connector's realized pnl is
  the profit of reductions before fees, which OKX writes as `pnl`.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro

__all__ = ["OkxExchange"]

# Most orders one POST /trade/cancel-batch-orders takes.
_CANCEL_BATCH = 20


class OkxExchange(ccxt.pro.okx):  # type: ignore[misc]
    """ccxt.pro okx: full order answers, a cancel_all_orders, fill fees as costs, pnl before fees."""

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), {"has": {"cancelAllOrders": True}})

    async def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        placed = await super().create_order(symbol, type, side, amount, price, params or {})
        try:
            return await self.fetch_order(placed["id"], symbol)
        except ccxt.BaseError:
            return self.extend(
                placed,
                {"amount": amount, "price": price if type != "market" else None, "status": "open"},
            )

    async def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        canceled = await super().cancel_order(id, symbol, params or {})
        try:
            return await self.fetch_order(canceled.get("id") or id, symbol)
        except ccxt.BaseError:
            return self.extend(canceled, {"status": "canceled"})

    async def cancel_all_orders(self, symbol: str | None = None, params: dict[str, Any] | None = None) -> Any:
        live = await self.fetch_open_orders(symbol, None, None, params or {})
        by_symbol: dict[str, list[str]] = {}
        for order in live:
            by_symbol.setdefault(order["symbol"], []).append(order["id"])
        canceled: list[Any] = []
        for name, ids in by_symbol.items():
            for start in range(0, len(ids), _CANCEL_BATCH):
                canceled += await self.cancel_orders(ids[start : start + _CANCEL_BATCH], name)
        return canceled

    def order_to_trade(self, order: Any, market: Any = None) -> Any:
        trade = super().order_to_trade(order, market)
        fees = [trade.get("fee"), *(trade.get("fees") or [])]
        flipped: set[int] = set()
        for fee in fees:
            if isinstance(fee, dict) and fee.get("cost") and id(fee) not in flipped:
                fee["cost"] = -fee["cost"]
                flipped.add(id(fee))
        return trade

    def parse_position(self, position: Any, market: Any = None) -> Any:
        parsed = super().parse_position(position, market)
        parsed["realizedPnl"] = self.safe_number(position, "pnl", parsed.get("realizedPnl"))
        return parsed

    def parse_order(self, order: Any, market: Any = None) -> Any:
        parsed = super().parse_order(order, market)
        if parsed.get("type") == "optimal_limit_ioc":
            parsed.update(type="market", timeInForce="IOC")
        return parsed
