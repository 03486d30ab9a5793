"""A live derivatives venue's leverage, margin mode and margin figures, through ccxt.

Each derivatives venue's folder says how its exchange does it (a MarginRules in its spec:
trademesh/venues/binanceusdm/margin.py, trademesh/venues/okx_swap/margin.py,
trademesh/venues/deribit/margin.py); this module holds what they share:
- `LiveLeverage`: TradeFlow SetLeverage / GetLeverage of the venue (Venue.set_leverage and
  Venue.leverage), the exchange's errors turned into ours (a refused leverage names `leverage`);
- `margin_from_ccxt`: a ccxt position structure's unified margin fields (markPrice, leverage,
  marginMode, initialMargin, maintenanceMargin, marginRatio, unrealizedPnl, liquidationPrice)
  as the position's PositionMargin, each taken from the exchange's own answer (`info`, through
  the rules' `raw_fields`) where ccxt leaves it empty;
- `with_account_ratios`: a cross position's margin ratio from the account, where the exchange
  states it there (MarginRules.account_ratios: Deribit's account summary);
- `liquidation`: whether an order or trade the exchange reports (its raw `info`) is the
  exchange's liquidation of the account's own position.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

import ccxt.pro

from trademesh.core.domain.model import LeverageSetting, MarginMode, Position, PositionMargin
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.venues.live.convert import safe_message
from trademesh.venues.live.normalize import decimal_text

__all__ = [
    "Call",
    "LiveLeverage",
    "MarginRules",
    "cross_without_ratio",
    "margin_from_ccxt",
    "positive_or_none",
    "with_account_ratios",
]

T = TypeVar("T")
# LiveTrading._call: a venue call with its retries, ccxt's errors raised as ours.
Call = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

_MODES = {"cross": MarginMode.CROSS, "crossed": MarginMode.CROSS, "isolated": MarginMode.ISOLATED}
# ccxt's unified position fields of PositionMargin, by its field names.
_FIELDS = {
    "mark_price": "markPrice",
    "leverage": "leverage",
    "initial_margin": "initialMargin",
    "maintenance_margin": "maintenanceMargin",
    "margin_ratio": "marginRatio",
    "unrealized_pnl": "unrealizedPnl",
    "liquidation_price": "liquidationPrice",
}


def positive_or_none(value: Any) -> Decimal | None:
    """A price the exchange states (ccxt float or the venue's string); None for absent, "" or 0
    (Binance writes liquidationPrice "0" for a position that cannot be liquidated)."""
    text = decimal_text(value) if value not in (None, "") else ""
    if not text or Decimal(text) == 0:
        return None
    return Decimal(text)


def _amount(value: Any) -> Decimal | None:
    text = decimal_text(value) if value not in (None, "") else ""
    return Decimal(text) if text else None


def mode_of(text: Any) -> MarginMode | None:
    """ccxt's marginMode ("cross", "isolated") or the venue's word (Binance's "CROSSED")."""
    return _MODES.get(str(text or "").lower())


class MarginRules:
    """How one exchange sets and reads leverage and margin mode, and what its raw answers hold."""

    # The margin modes SetLeverage takes (empty: the exchange keeps no per-symbol leverage,
    # SetLeverage and GetLeverage answer UNIMPLEMENTED; Venue.margin_modes).
    modes: tuple[MarginMode, ...] = (MarginMode.CROSS, MarginMode.ISOLATED)

    async def set_leverage(
        self, exchange: Any, symbol: str, leverage: Decimal, mode: MarginMode | None, call: Call[Any]
    ) -> LeverageSetting:
        """Set the symbol's leverage (and mode), and the setting now in force."""
        raise NotImplementedError(f"{exchange.id} keeps no per-symbol leverage")

    async def leverage(self, exchange: Any, symbol: str, call: Call[Any]) -> LeverageSetting:
        """The symbol's setting in force and its maximum."""
        raise NotImplementedError(f"{exchange.id} keeps no per-symbol leverage")

    async def recall(self, exchange: Any, symbol: str, call: Call[Any]) -> None:
        """Read back from the exchange what the rules keep of the symbol and the exchange holds,
        once a process, before an order or a read needs it (OKX: its margin mode)."""

    def order_params(self, symbol: str) -> dict[str, Any]:
        """ccxt create_order params every order of the symbol takes (OKX: its margin mode)."""
        return {}

    def raw_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """The exchange's own position fields by ccxt's unified names (markPrice, leverage,
        marginMode, ...), for those ccxt leaves empty."""
        return {}

    def liquidation(self, info: Mapping[str, Any]) -> bool:
        """The exchange's raw order or trade (ccxt's `info`) is its liquidation of a position."""
        return False

    def position_margins(self, balance: Mapping[str, Any]) -> dict[str, Decimal]:
        """The initial margin open positions hold, by asset, from ccxt's fetch_balance answer
        (its `info`: the exchange's own); {} where the exchange does not say."""
        return {}

    async def account_ratios(self, exchange: Any, assets: set[str], call: Call[Any]) -> dict[str, Decimal]:
        """The margin ratio of the cross positions settled in each of `assets`, where the exchange
        states its parts of the account rather than of each position (Deribit's account
        summary); {} where it does not (positions then keep the ratio their own answer gives)."""
        return {}


def with_account_ratios(positions: Sequence[Position], ratios: Mapping[str, Decimal]) -> list[Position]:
    """The positions, each cross one without a margin ratio given its settle asset's in `ratios`."""
    out = []
    for position in positions:
        margin = position.margin
        if margin is not None and margin.margin_ratio is None and margin.mode is MarginMode.CROSS:
            ratio = ratios.get(margin.settle_asset)
            if ratio is not None:
                position = replace(position, margin=replace(margin, margin_ratio=ratio))
        out.append(position)
    return out


def cross_without_ratio(positions: Sequence[Position]) -> set[str]:
    """The settle assets of the cross positions that carry no margin ratio."""
    return {
        p.margin.settle_asset
        for p in positions
        if p.margin is not None and p.margin.margin_ratio is None and p.margin.mode is MarginMode.CROSS
    }


def margin_from_ccxt(raw: Mapping[str, Any], settle: str, rules: MarginRules) -> PositionMargin:
    """A ccxt position structure's margin figures, in `settle` (the market's settle asset)."""
    info = raw.get("info")
    fallback = rules.raw_fields(info) if isinstance(info, Mapping) else {}

    def pick(name: str) -> Any:
        value = raw.get(name)
        return fallback.get(name) if value in (None, "") else value

    figures = {field: pick(name) for field, name in _FIELDS.items()}
    return PositionMargin(
        settle_asset=settle,
        leverage=positive_or_none(figures["leverage"]),
        mode=mode_of(pick("marginMode")),
        mark_price=positive_or_none(figures["mark_price"]),
        initial_margin=_amount(figures["initial_margin"]),
        maintenance_margin=_amount(figures["maintenance_margin"]),
        margin_ratio=_amount(figures["margin_ratio"]),
        unrealized_pnl=_amount(figures["unrealized_pnl"]),
        liquidation_price=positive_or_none(figures["liquidation_price"]),
    )


@dataclass(eq=False)
class LiveLeverage:
    """SetLeverage and GetLeverage of one live venue, by its exchange's rules; `call` is the venue's
    (with its retries), `secrets` what its messages must not show."""

    venue: str
    exchange: Any
    rules: MarginRules
    call: Call[Any]
    secrets: list[str]

    async def set(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        try:
            return await self.rules.set_leverage(self.exchange, symbol, leverage, mode, self._refusing)
        except ccxt.BaseError as exc:  # a call the rules made outside `call`
            raise FailedPrecondition(f"{self.venue}: {safe_message(exc, self.secrets)}") from exc

    async def read(self, symbol: str) -> LeverageSetting:
        return await self.rules.leverage(self.exchange, symbol, self.call)

    async def _refusing(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """A setting call, retried as every venue call: the exchange's refusal of the request
        (ccxt BadRequest: Binance -4028, OKX 59102 ...) names `leverage`; its refusal in the
        account's state (open orders or a position block a mode change) is FAILED_PRECONDITION."""

        async def refused_as_ours() -> Any:
            try:
                return await call()
            except ccxt.BadRequest as exc:
                text = safe_message(exc, self.secrets)
                raise InvalidArgument.field("leverage", f"{self.venue} refused it: {text}") from exc
            except (ccxt.OperationRejected, ccxt.InvalidOrder, ccxt.MarginModeAlreadySet) as exc:
                raise FailedPrecondition(f"{self.venue}: {safe_message(exc, self.secrets)}") from exc

        return await self.call(refused_as_ours)
