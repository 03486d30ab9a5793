"""What the ledger books: fills, funding payments and deposits (capital in and out).

The caller names each event (`event_id`, e.g. "fill/<venue>/<fill_id>"): the id is the
idempotency key of the chain it posts and the seed of its transfers' ids. Money and sizes are
Decimal; times are the venue's, in ns. A malformed event is refused where it is made
(InvalidArgument naming the field); whether it can be booked (cash, holdings) is the core's
answer (docs/ledger.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.inverse import coin_value
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine.model import Links
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["BOOKED_KINDS", "UNATTRIBUTED", "DepositEvent", "Event", "FillEvent", "FundingEvent"]

# The strategy id of what no strategy placed (a protective stop, a flatten order): the
# unattributed book, shown as "unattributed".
UNATTRIBUTED = ""

# The instrument kinds the ledger books: spot and linear perpetuals (settled in the quote asset).
BOOKED_KINDS = (InstrumentKind.SPOT, InstrumentKind.PERPETUAL)


def _require(ok: bool, name: str, description: str) -> None:
    if not ok:
        raise InvalidArgument.field(name, description)


def _positive(value: Decimal, name: str) -> None:
    _require(value.is_finite() and value > 0, name, f"must be a positive decimal, got {value}")


def _finite(value: Decimal, name: str) -> None:
    _require(value.is_finite(), name, f"must be a finite decimal, got {value}")


def _named(value: str, name: str) -> None:
    _require(bool(value), name, "must not be empty")


@dataclass(frozen=True)
class FillEvent:
    """One execution. `size` is in the instrument's units: the base asset for spot, contracts
    for a perpetual (each `contract_size` of the base asset). An `inverse` perpetual (BTC/USD:BTC)
    is sized in contracts of a face value of the quote asset (`contract_size` USD each) and
    settles in the base coin: its position is kept in the quote asset, its cost, PnL and margin
    in the coin. `fee` is signed as paid (> 0 a fee paid, < 0 a rebate), in `fee_asset`, which
    may be neither base nor quote (BNB).
    `links.strategy_id` "" is a fill no strategy asked for (a protective stop, a flatten order):
    see docs/ledger.md, "Attribution". `leverage` is the leverage in force at the venue: the
    position's initial margin is its cost at entry / leverage. A `liquidation` fill is the venue
    closing (part of) a perpetual position at its bankruptcy price; its fee is the liquidation
    fee, booked apart from trading fees. The transfers carry `links` with `event_id` set to the
    event's."""

    event_id: str
    venue: str
    symbol: str
    base: str
    quote: str
    instrument: InstrumentKind
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    ts_ns: int
    links: Links
    contract_size: Decimal = Decimal(1)
    leverage: Decimal = Decimal(1)
    inverse: bool = False
    liquidation: bool = False

    def __post_init__(self) -> None:
        for name in ("event_id", "venue", "symbol", "base", "quote"):
            _named(getattr(self, name), name)
        _require(self.base != self.quote, "quote", "must differ from the base asset")
        _require(self.instrument in BOOKED_KINDS, "instrument", f"{self.instrument.value} is not booked")
        _positive(self.price, "price")
        _positive(self.size, "size")
        _positive(self.contract_size, "contract_size")
        _positive(self.leverage, "leverage")
        _finite(self.fee, "fee")
        _require(bool(self.fee_asset) or self.fee == 0, "fee_asset", "must name the fee's asset")
        perpetual = self.instrument is InstrumentKind.PERPETUAL
        _require(perpetual or not self.inverse, "inverse", "only a perpetual is booked inverse")
        _require(perpetual or not self.liquidation, "liquidation", "only a perpetual is liquidated")

    @property
    def quantity(self) -> Decimal:
        """The fill's size in the position's asset: the base, or an inverse one's face value."""
        if self.instrument is InstrumentKind.PERPETUAL:
            return self.size * self.contract_size
        return self.size

    @property
    def position_asset(self) -> str:
        """The asset the position is counted in: the base, or the quote for an inverse contract."""
        return self.quote if self.inverse else self.base

    @property
    def money_asset(self) -> str:
        """The asset its cost, PnL and margin are in: the quote, or the coin for an inverse one."""
        return self.base if self.inverse else self.quote

    def value(self, quantity: Decimal) -> Decimal:
        """What `quantity` (position asset) is worth at the fill's price, in the money asset: an
        inverse face value's coin is rounded half-even to 1e-12 (trademesh.core.domain.inverse)."""
        return coin_value(quantity, self.price) if self.inverse else quantity * self.price

    @property
    def notional(self) -> Decimal:
        """What the fill is worth in the money asset."""
        return self.value(self.quantity)


@dataclass(frozen=True)
class FundingEvent:
    """A perpetual's funding payment: `amount` > 0 received, < 0 paid, in `asset`.
    `links.strategy_id` "" shares it among the strategies holding the position."""

    event_id: str
    venue: str
    symbol: str
    asset: str
    amount: Decimal
    ts_ns: int
    links: Links

    def __post_init__(self) -> None:
        for name in ("event_id", "venue", "symbol", "asset"):
            _named(getattr(self, name), name)
        _finite(self.amount, "amount")
        _require(self.amount != 0, "amount", "must not be zero")


@dataclass(frozen=True)
class DepositEvent:
    """Capital in (> 0: a deposit, an opening balance) or out (< 0: a withdrawal) of a venue's
    cash in `asset`, against the venue's equity account."""

    event_id: str
    venue: str
    asset: str
    amount: Decimal
    ts_ns: int

    def __post_init__(self) -> None:
        for name in ("event_id", "venue", "asset"):
            _named(getattr(self, name), name)
        _finite(self.amount, "amount")
        _require(self.amount != 0, "amount", "must not be zero")


Event = FillEvent | FundingEvent | DepositEvent
