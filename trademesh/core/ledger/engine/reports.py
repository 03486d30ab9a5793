"""What the books say, read from accounts and balances alone (the core's or the store's):
positions with their cost and margin, and profit and loss per strategy and asset: realised,
fees, funding, and unrealised at given marks (docs/ledger.md, "Reading the books").

Fees and funding are signed as they affect PnL: a fee paid is negative, a rebate positive;
funding received positive. Each line is in one asset: a fee paid in BNB is its own line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.inverse import coin_value
from trademesh.core.ledger.engine.chart import QUANTITY_CODES, AccountCode
from trademesh.core.ledger.engine.events import UNATTRIBUTED
from trademesh.core.ledger.engine.model import ZERO, Account, LedgerBalance

__all__ = [
    "UNATTRIBUTED",
    "Parts",
    "PnlLine",
    "PositionView",
    "pnl",
    "positions",
    "priced",
    "realised",
    "strategy_label",
]


def strategy_label(strategy: str) -> str:
    """How a strategy is shown: the unattributed book ("") as "unattributed"."""
    return strategy if strategy != UNATTRIBUTED else "unattributed"


@dataclass(frozen=True)
class PositionView:
    """A position of one strategy: quantity in the base asset (< 0 short), cost basis in the
    quote asset (< 0 for a short: what opening it brought in), initial margin held. An inverse
    perpetual's `base` is the quote asset it is sized in, and its `quote` the coin it settles in."""

    venue: str
    symbol: str
    strategy: str
    base: str
    quote: str
    perpetual: bool
    quantity: Decimal
    cost: Decimal
    margin: Decimal

    @property
    def inverse(self) -> bool:
        """An inverse perpetual's position (BTC/USD:BTC): its quantity is a face value of the
        symbol's quote asset (`base` here), its cost the coin that was worth at entry (`quote`)."""
        pair = self.symbol.partition(":")[0]
        coin = pair.partition("/")[0]
        return self.perpetual and self.quote == coin and self.base != coin

    @property
    def average_price(self) -> Decimal:
        if not self.quantity or not self.cost:
            return ZERO
        return self.quantity / self.cost if self.inverse else self.cost / self.quantity

    def unrealised(self, mark: Decimal) -> Decimal:
        """The PnL closing the whole position at `mark` would realise (in `quote`): an inverse
        one's cost less the coin its face is worth at the mark."""
        if self.inverse:
            return self.cost - coin_value(self.quantity, mark)
        return self.quantity * mark - self.cost


@dataclass(frozen=True)
class PnlLine:
    strategy: str
    asset: str
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    unrealised: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.realised + self.fees + self.funding + self.unrealised


def _net_debit(balances: Mapping[str, LedgerBalance], account: Account) -> Decimal:
    balance = balances.get(account.id)
    return balance.net_debit if balance else ZERO


def positions(accounts: Mapping[str, Account], balances: Mapping[str, LedgerBalance]) -> list[PositionView]:
    """Every position with a quantity account (flat ones too), by venue, symbol and strategy."""
    by_key: dict[tuple[str, str, str], dict[int, Account]] = {}
    for account in accounts.values():
        key = account.key
        if key.symbol:
            by_key.setdefault((key.venue, key.symbol, key.strategy), {})[key.code] = account
    views = []
    for (venue, symbol, strategy), found in sorted(by_key.items()):
        quantity = next((found[code] for code in QUANTITY_CODES if code in found), None)
        cost = found.get(AccountCode.POSITION_COST)
        if quantity is None or cost is None:
            continue
        margin = found.get(AccountCode.MARGIN_LOCKED)
        held = balances.get(margin.id) if margin else None
        views.append(
            PositionView(
                venue=venue,
                symbol=symbol,
                strategy=strategy,
                base=quantity.key.asset,
                quote=cost.key.asset,
                perpetual=quantity.key.code == AccountCode.PERP_QUANTITY,
                quantity=_net_debit(balances, quantity),
                cost=_net_debit(balances, cost),
                margin=held.debits_pending if held else ZERO,
            )
        )
    return views


def pnl(
    accounts: Mapping[str, Account],
    balances: Mapping[str, LedgerBalance],
    marks: Mapping[tuple[str, str], Decimal] | None = None,
    venue: str = "",
) -> dict[tuple[str, str], PnlLine]:
    """PnL by (strategy, asset), of one venue or ("") all. Unrealised is valued at
    `marks[(venue, symbol)]`; a position without a mark adds none."""
    return priced(realised(accounts, balances, venue), positions(accounts, balances), marks, venue)


_PARTS = {
    AccountCode.REALISED_PNL: "realised",
    AccountCode.FEES_PAID: "fees",
    AccountCode.LIQUIDATION_FEES: "fees",
    AccountCode.FUNDING_PNL: "funding",
}

Parts = dict[tuple[str, str], dict[str, Decimal]]


def realised(
    accounts: Mapping[str, Account], balances: Mapping[str, LedgerBalance], venue: str = ""
) -> Parts:
    """The parts of PnL that move only with postings (realised, fees, funding), by (strategy,
    asset), of one venue or ("") all: what `pnl` adds the unrealised to."""
    sums: Parts = {}
    for account in accounts.values():
        key = account.key
        part = _PARTS.get(AccountCode(key.code)) if key.code in _PARTS else None
        if part is None or (venue and key.venue != venue):
            continue
        # Realised PnL and funding are credit-normal; fees paid are debit-normal and cost PnL.
        line = sums.setdefault((key.strategy, key.asset), {})
        line[part] = line.get(part, ZERO) - _net_debit(balances, account)
    return sums


def priced(
    sums: Parts,
    views: list[PositionView],
    marks: Mapping[tuple[str, str], Decimal] | None = None,
    venue: str = "",
) -> dict[tuple[str, str], PnlLine]:
    """The lines of `realised` sums (left as they are) with the positions' unrealised PnL at
    `marks` added."""
    lines = {key: dict(parts) for key, parts in sums.items()}
    for view in views:
        mark = (marks or {}).get((view.venue, view.symbol))
        if mark is not None and (not venue or view.venue == venue) and view.quantity:
            line = lines.setdefault((view.strategy, view.quote), {})
            line["unrealised"] = line.get("unrealised", ZERO) + view.unrealised(mark)
    return {key: PnlLine(key[0], key[1], **line) for key, line in sorted(lines.items())}
