"""Round trips from the books: per strategy and instrument, a position opened from flat and
closed back to flat, with what it realised net of its fees (the Supervisor's hit rate,
docs/ledger.md "Round trips").

The fills' transfers are read in the order they were posted. A transfer to or from a
strategy's position quantity account moves that position; one to or from its realised PnL
account (credit-normal: a gain credits) or fees account (a fee debits, a rebate credits) adds
to the trip's result, in that account's asset. A fill that flips the position closes the trip
with the part of its fee the closing size bears and opens the next with the rest (realised PnL
comes only from the closing part). A trip's result is counted in its settlement asset (the
asset its realised PnL is booked in; the cost basis's, when it realised nothing): a fee paid in
the base or a third asset (BNB) is left out of it. Funding is not a fill's and is not counted. A
position still open is not a trip. Pure: transfers and accounts in, trips out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.ledger.engine.chart import QUANTITY_CODES, AccountCode
from trademesh.core.ledger.engine.model import ZERO, Account, Transfer

__all__ = ["RoundTrip", "TripCount", "count_trips", "round_trips", "settlement_assets"]

_Key = tuple[str, str, str]  # (strategy, venue, symbol)
# What a trip's result counts besides its quantity: realised PnL and its fees, a liquidation's too.
_RESULT_CODES = (AccountCode.REALISED_PNL, AccountCode.FEES_PAID, AccountCode.LIQUIDATION_FEES)


@dataclass(frozen=True)
class RoundTrip:
    strategy: str
    venue: str
    symbol: str
    opened_ns: int
    closed_ns: int
    asset: str  # the settlement asset `pnl` is in
    pnl: Decimal  # realised net of the fees in `asset`

    @property
    def won(self) -> bool:
        return self.pnl > 0


@dataclass(frozen=True)
class TripCount:
    round_trips: int = 0
    winners: int = 0


@dataclass
class _Fill:
    """What one fill did to one position: its quantity change and results by asset."""

    ts_ns: int
    quantity: Decimal = ZERO
    realised: dict[str, Decimal] = field(default_factory=dict)
    fees: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class _Trip:
    opened_ns: int
    results: dict[str, Decimal] = field(default_factory=dict)
    realised_in: str = ""

    def add(self, amounts: Mapping[str, Decimal], share: Decimal = Decimal(1)) -> None:
        for asset, amount in amounts.items():
            self.results[asset] = self.results.get(asset, ZERO) + amount * share


def round_trips(
    transfers: Iterable[Transfer], accounts: Mapping[str, Account], settle: Mapping[_Key, str] | None = None
) -> list[RoundTrip]:
    """The round trips closed by `transfers` (posted; by time, each event's together), oldest first.
    `settle`: a position's settlement asset where it realised nothing (its cost basis's)."""
    trips: list[RoundTrip] = []
    size: dict[_Key, Decimal] = {}
    open_: dict[_Key, _Trip] = {}
    for key, fill in _fills(transfers, accounts):
        before = size.get(key, ZERO)
        after = before + fill.quantity
        size[key] = after
        trip = open_.get(key)
        if trip is None:
            if after != 0:
                open_[key] = _opened(fill, share=Decimal(1))
            continue
        trip.add(fill.realised)
        trip.realised_in = trip.realised_in or next(iter(fill.realised), "")
        if after != 0 and (after > 0) == (before > 0):
            trip.add(fill.fees)
            continue
        closing = abs(before) / abs(fill.quantity) if fill.quantity else Decimal(1)
        trip.add(fill.fees, closing)
        trips.append(_closed(key, trip, fill.ts_ns, (settle or {}).get(key, "")))
        del open_[key]
        if after != 0:  # flipped: the rest of the fill opens the other side
            open_[key] = _opened(fill, share=1 - closing, realised=False)
    return trips


def count_trips(trips: Iterable[RoundTrip], since_ns: int = 0) -> dict[tuple[str, str], TripCount]:
    """Per strategy and settlement asset, the trips closed at or after `since_ns` and how many
    of them won."""
    counts: dict[tuple[str, str], TripCount] = {}
    for trip in trips:
        if trip.closed_ns < since_ns:
            continue
        now = counts.get((trip.strategy, trip.asset), TripCount())
        counts[(trip.strategy, trip.asset)] = TripCount(now.round_trips + 1, now.winners + int(trip.won))
    return counts


def settlement_assets(accounts: Iterable[Account]) -> dict[_Key, str]:
    """Each strategy's position's cost basis asset: where a trip realised nothing, its result
    is counted in it."""
    return {
        (a.key.strategy, a.key.venue, a.key.symbol): a.key.asset
        for a in accounts
        if a.key.code == AccountCode.POSITION_COST and a.key.strategy
    }


def _opened(fill: _Fill, share: Decimal, realised: bool = True) -> _Trip:
    trip = _Trip(fill.ts_ns)
    if realised:
        trip.add(fill.realised)
    trip.add(fill.fees, share)
    return trip


def _closed(key: _Key, trip: _Trip, closed_ns: int, cost_asset: str) -> RoundTrip:
    asset = trip.realised_in or cost_asset or next(iter(trip.results), "")
    strategy, venue, symbol = key
    return RoundTrip(strategy, venue, symbol, trip.opened_ns, closed_ns, asset, trip.results.get(asset, ZERO))


def _fills(transfers: Iterable[Transfer], accounts: Mapping[str, Account]) -> Iterable[tuple[_Key, _Fill]]:
    """Per fill (in order) and position it touched, what it did. A fill's transfers come
    together (they share its event and time), so a fill ends where the next event begins."""
    current = ""
    found: dict[_Key, _Fill] = {}
    for transfer in transfers:
        if not transfer.links.fill_id:
            continue
        if transfer.links.event_id != current:
            yield from found.items()
            current, found = transfer.links.event_id, {}
        for account_id, sign in ((transfer.debit_account_id, 1), (transfer.credit_account_id, -1)):
            account = accounts.get(account_id)
            if account is not None and account.key.symbol and account.key.strategy:
                _take(found, account, sign * transfer.amount, transfer.ts_ns)
    yield from found.items()


def _take(found: dict[_Key, _Fill], account: Account, net_debit: Decimal, ts_ns: int) -> None:
    key_ = account.key
    code = key_.code
    if code not in QUANTITY_CODES and code not in _RESULT_CODES:
        return
    fill = found.setdefault((key_.strategy, key_.venue, key_.symbol), _Fill(ts_ns))
    if code in QUANTITY_CODES:
        fill.quantity += net_debit
    elif code == AccountCode.REALISED_PNL:  # credit-normal: a gain credits it
        fill.realised[key_.asset] = fill.realised.get(key_.asset, ZERO) - net_debit
    else:  # a fee paid debits it (a trading or a liquidation fee)
        fill.fees[key_.asset] = fill.fees.get(key_.asset, ZERO) - net_debit
