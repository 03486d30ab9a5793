"""The posting rules: each event as one chain of balanced transfers (docs/ledger.md, "How each
event posts"). Rules read the books as they stand before the event; nothing is changed here.

A chain's transfers are ordered so that what releases or brings in cash comes before what
spends it: margin voids, the cash a trade brings, the trade's other legs, realised PnL, fees,
and the margin the position then holds. Transfer ids are `transfer_id(event_id, index)`, but
for a margin hold, whose id comes from the position's quantity account (`hold_id`), so that a
core rebuilt from balances alone can name the hold it has to void.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from trademesh.core.domain.cost_share import MONEY_STEP, quantum_of, released_cost
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine import margin as _margin
from trademesh.core.ledger.engine.allocate import split, trim
from trademesh.core.ledger.engine.books import Books, chain_balances
from trademesh.core.ledger.engine.chart import AccountCode, TransferCode
from trademesh.core.ledger.engine.events import UNATTRIBUTED, DepositEvent, Event, FillEvent, FundingEvent
from trademesh.core.ledger.engine.model import (
    ZERO,
    Account,
    AccountKey,
    Chain,
    Links,
    Transfer,
    TransferFlag,
    transfer_id,
)
from trademesh.core.platform.errors import FailedPrecondition

__all__ = [
    "Slice",
    "attribute",
    "build",
    "chain_balances",
    "held_fee",
    "hold_id",
    "open_holds",
    "plan",
]


def _canon(value: Decimal) -> str:
    """A decimal's text independent of trailing zeros (0.50 as stored, 0.5 as computed)."""
    return format(value.normalize(), "f") if value else "0"


def hold_id(
    quantity_account_id: str, debits_posted: Decimal, credits_posted: Decimal, ledger_index: int
) -> str:
    """The id of a position's margin hold (0: in the cash ledger, 1: in the margin ledger):
    from its quantity account and that account's posted totals after the fill that made it.
    Every fill moves those totals, so each hold's id is new, and a core that has only the
    balances names the open hold as the one that made it."""
    seed = f"margin/{quantity_account_id}/{_canon(debits_posted)}/{_canon(credits_posted)}"
    return transfer_id(seed, ledger_index)


@dataclass
class _Chain:
    """A chain being built: transfers in order and the accounts they touch."""

    books: Books
    event_id: str
    ts_ns: int
    transfers: list[Transfer] = field(default_factory=list)
    accounts: dict[str, Account] = field(default_factory=dict)

    def move(
        self,
        debit: AccountKey,
        credit: AccountKey,
        amount: Decimal,
        code: TransferCode,
        links: Links,
        flags: TransferFlag = TransferFlag.NONE,
        pending_id: str = "",
        id: str = "",
    ) -> None:
        """`amount` from credit to debit; a negative amount moves the other way; zero, nothing
        (but for a void)."""
        if not amount and not pending_id:
            return
        if amount < 0:
            debit, credit, amount = credit, debit, -amount
        amount = trim(amount)  # 30000.0 (0.5 x 60000) as 30000: one text per amount
        for key in (debit, credit):
            self.accounts.setdefault(key.id, self.books.account(key))
        self.transfers.append(
            Transfer(
                id=id or transfer_id(self.event_id, len(self.transfers)),
                debit_account_id=debit.id,
                credit_account_id=credit.id,
                amount=amount,
                ledger=debit.ledger,
                code=int(code),
                asset=debit.asset,
                ts_ns=self.ts_ns,
                links=links,
                flags=flags,
                pending_id=pending_id,
            )
        )

    def void(self, held: Transfer, links: Links) -> None:
        debit = self.books.accounts[held.debit_account_id].key
        credit = self.books.accounts[held.credit_account_id].key
        self.move(debit, credit, held.amount, TransferCode.MARGIN, links, TransferFlag.VOID_PENDING, held.id)

    def chain(self) -> Chain:
        return Chain(self.event_id, self.ts_ns, tuple(self.transfers), tuple(self.accounts.values()))


@dataclass(frozen=True)
class Slice:
    """One strategy's part of a fill, in the base asset, against its position before the fill.
    The position moves by the part `quantity` on the fill's side less `held_fee` (its share of a
    spot fee paid in the base, which the venue takes from the holding). Of that move, `reduced`
    closes part of the position (releasing cost `released`, realising `realised`), `opened` adds
    to it or opens the other side (cost `added`, signed); `margin` is what a perpetual position
    holds before and after."""

    strategy: str
    quantity: Decimal
    held_fee: Decimal
    before: tuple[Decimal, Decimal]
    reduced: Decimal
    released: Decimal
    realised: Decimal
    opened: Decimal
    added: Decimal
    margin_before: Decimal
    margin_after: Decimal


def attribute(books: Books, fill: FillEvent) -> dict[str, Decimal]:
    """Each strategy's part of the fill, in the base asset (docs/ledger.md, "Attribution").

    A fill a strategy placed is its own. A fill no strategy placed ("") first reduces the
    positions on the other side, pro rata to their sizes (rounded down to the finest step of
    the sizes, the remainder to the largest holder, then the next, never past what one holds);
    what is left over, or all of it when nobody holds that side, is the unattributed book's.
    """
    quantity = fill.quantity
    if fill.links.strategy_id:
        return {fill.links.strategy_id: quantity}
    holders = {}
    for strategy, account in books.indexed(_quantity_code(fill), fill.venue, fill.symbol).items():
        held = books.balance(account.key).net_debit
        if held * fill.side.sign < 0:
            holders[strategy] = abs(held)
    held_total = sum(holders.values(), ZERO)
    if not holders:
        return {UNATTRIBUTED: quantity}
    reduced = min(quantity, held_total)
    parts = split(reduced, holders, quantum_of(quantity, *holders.values()), caps=holders)
    if quantity > held_total:
        parts[UNATTRIBUTED] = parts.get(UNATTRIBUTED, ZERO) + quantity - held_total
    return parts


def held_fee(fill: FillEvent, share: Decimal) -> Decimal:
    """What of a strategy's share of the fee comes out of its position: all of it for a spot fee
    paid in the base (Binance takes a buy's fee from the base it brings in: 1 bought at 0.1 %
    holds 0.999), none for a fee in the quote or a third asset, nor for a perpetual's."""
    spot = fill.instrument is InstrumentKind.SPOT
    return share if spot and fill.fee_asset == fill.base else ZERO


def plan(books: Books, fill: FillEvent, strategy: str, quantity: Decimal, fee: Decimal = ZERO) -> Slice:
    """A strategy's part of a fill against its position (average cost): `quantity` on the fill's
    side less `fee` (`held_fee`) at the fill's price, so a buy of 1 paying 0.001 of it in fees
    adds 0.999 at a cost of 0.999 x p, and a sell of 1 paying 0.001 gives up 1.001."""
    qty, cost = books.position(fill.venue, fill.symbol, strategy)
    moved = fill.side.sign * quantity - fee
    sign = 1 if moved > 0 else -1
    size = abs(moved)
    reduced = min(size, abs(qty)) if qty * sign < 0 else ZERO
    released = trim(released_cost(cost, reduced, abs(qty))) if reduced else ZERO
    realised = _realised(fill, qty, reduced, released) if reduced else ZERO
    opened = size - reduced
    added = sign * fill.value(opened)
    margin_before = margin_after = ZERO
    if fill.instrument is InstrumentKind.PERPETUAL:
        key = chart.margin_locked(fill.venue, fill.symbol, strategy, fill.money_asset)
        margin_before = books.balance(key).debits_pending
        margin_after = _margin.margin_after(margin_before, cost, abs(qty), reduced, abs(added), fill.leverage)
    return Slice(
        strategy=strategy,
        quantity=quantity,
        held_fee=fee,
        before=(qty, cost),
        reduced=reduced,
        released=released,
        realised=realised,
        opened=opened,
        added=added,
        margin_before=margin_before,
        margin_after=margin_after,
    )


def _realised(fill: FillEvent, held: Decimal, reduced: Decimal, released: Decimal) -> Decimal:
    """The PnL of closing `reduced` of a position of `held` whose cost released is `released`:
    what closing brings (a long sold) less its cost, r x p - c, -r x p - c for a short. An
    inverse position's cost is the coin its face was worth at entry: it gains that less the
    coin its face is worth now, c - r / p for a long, c + r / p for a short."""
    value = fill.value(reduced)
    if fill.inverse:
        return released - value if held > 0 else released + value
    return (value if held > 0 else -value) - released


def _quantity_code(fill: FillEvent) -> AccountCode:
    perpetual = fill.instrument is InstrumentKind.PERPETUAL
    return AccountCode.PERP_QUANTITY if perpetual else AccountCode.SPOT_QUANTITY


def build(books: Books, event: Event) -> Chain:
    """The chain that posts `event` against the books as they stand; FailedPrecondition when
    the books contradict themselves (a margin balance without its open hold)."""
    if isinstance(event, FillEvent):
        return _fill(books, event)
    if isinstance(event, FundingEvent):
        return _funding(books, event)
    return _deposit(books, event)


def _deposit(books: Books, event: DepositEvent) -> Chain:
    out = _Chain(books, event.event_id, event.ts_ns)
    code = TransferCode.DEPOSIT if event.amount > 0 else TransferCode.WITHDRAWAL
    links = Links(event_id=event.event_id)
    out.move(
        chart.venue_cash(event.venue, event.asset),
        chart.equity(event.venue, event.asset),
        event.amount,
        code,
        links,
    )
    return out.chain()


def _funding(books: Books, event: FundingEvent) -> Chain:
    out = _Chain(books, event.event_id, event.ts_ns)
    links = replace(event.links, event_id=event.event_id)
    venue, asset = event.venue, event.asset
    out.move(
        chart.venue_cash(venue, asset),
        chart.cash_funding(venue, asset),
        event.amount,
        TransferCode.FUNDING,
        links,
    )
    for strategy, share in _funding_shares(books, event).items():
        pnl = chart.funding_pnl(venue, event.symbol, strategy, asset)
        out.move(
            chart.funding_control(venue, asset),
            pnl,
            share,
            TransferCode.FUNDING,
            replace(links, strategy_id=strategy),
        )
    return out.chain()


def _funding_shares(books: Books, event: FundingEvent) -> dict[str, Decimal]:
    """The payment's owner, or (strategy "") the holders of the perpetual, pro rata to their
    signed positions (a short's share of a payment longs receive is paid); the unattributed
    book's when nobody holds it or the holders net to zero."""
    if event.links.strategy_id:
        return {event.links.strategy_id: event.amount}
    accounts = books.indexed(AccountCode.PERP_QUANTITY, event.venue, event.symbol)
    held = {strategy: books.balance(account.key).net_debit for strategy, account in accounts.items()}
    held = {strategy: qty for strategy, qty in held.items() if qty}
    if not held or not sum(held.values(), ZERO):
        return {UNATTRIBUTED: event.amount}
    return split(event.amount, held, min(quantum_of(event.amount), MONEY_STEP))


def _fill(books: Books, fill: FillEvent) -> Chain:
    out = _Chain(books, fill.event_id, fill.ts_ns)
    links = replace(fill.links, event_id=fill.event_id)
    parts = attribute(books, fill)
    fees = _fee_shares(fill, parts)
    slices = [
        plan(books, fill, strategy, qty, held_fee(fill, fees.get(strategy, ZERO)))
        for strategy, qty in sorted(parts.items())
    ]
    own = {part.strategy: replace(links, strategy_id=part.strategy) for part in slices}
    perpetual = fill.instrument is InstrumentKind.PERPETUAL
    venue, quote = fill.venue, fill.money_asset
    if perpetual:
        for part in slices:
            holds = _open_holds_of(books, fill, part.strategy)
            if part.margin_before and len(holds) != 2:
                raise FailedPrecondition(
                    f"the margin hold of {fill.venue}/{fill.symbol} strategy {part.strategy!r} "
                    f"({part.margin_before}) is not open in the books"
                )
            for held in holds:
                out.void(held, own[part.strategy])
    else:
        _spot_cash(out, fill, links)
    for part in slices:
        _position(out, fill, part, own[part.strategy])
    if perpetual:
        settled = sum((part.realised for part in slices), ZERO)
        out.move(
            chart.venue_cash(venue, quote), chart.market(venue, quote), settled, TransferCode.REALISED, links
        )
    _fees(out, fill, fees, slices, links, own)
    if perpetual:
        for part in slices:
            _hold(out, books, fill, part, own[part.strategy])
    return out.chain()


def _spot_cash(out: _Chain, fill: FillEvent, links: Links) -> None:
    """What a spot trade moves at the venue: base for quote, what comes in first."""
    venue = fill.venue
    base = (chart.venue_cash(venue, fill.base), chart.market(venue, fill.base), fill.quantity)
    quote = (chart.venue_cash(venue, fill.quote), chart.market(venue, fill.quote), fill.notional)
    incoming, outgoing = (base, quote) if fill.side is Side.BUY else (quote, base)
    out.move(incoming[0], incoming[1], incoming[2], TransferCode.TRADE, links)
    out.move(outgoing[1], outgoing[0], outgoing[2], TransferCode.TRADE, links)


def _position(out: _Chain, fill: FillEvent, part: Slice, links: Links) -> None:
    """A strategy's position: quantity, cost released and added, realised PnL."""
    venue, symbol, strategy = fill.venue, fill.symbol, part.strategy
    perpetual = fill.instrument is InstrumentKind.PERPETUAL
    quantity = chart.position_quantity(venue, symbol, strategy, fill.position_asset, perpetual)
    cost = chart.position_cost(venue, symbol, strategy, fill.money_asset)
    base_control = chart.position_control(venue, symbol, fill.position_asset)
    quote_control = chart.position_control(venue, symbol, fill.money_asset)
    out.move(quantity, base_control, fill.side.sign * part.quantity, TransferCode.TRADE, links)
    out.move(quote_control, cost, part.released, TransferCode.COST_RELEASED, links)
    out.move(cost, quote_control, part.added, TransferCode.TRADE, links)
    pnl = chart.realised_pnl(venue, symbol, strategy, fill.money_asset)
    out.move(
        chart.realised_control(venue, fill.money_asset), pnl, part.realised, TransferCode.REALISED, links
    )


def _fee_shares(fill: FillEvent, parts: dict[str, Decimal]) -> dict[str, Decimal]:
    """Each strategy's share of the fee, pro rata to its part of the fill."""
    if not fill.fee:
        return {}
    return split(fill.fee, parts, min(quantum_of(fill.fee), MONEY_STEP))


def _fees(
    out: _Chain,
    fill: FillEvent,
    shares: dict[str, Decimal],
    slices: list[Slice],
    links: Links,
    own: dict[str, Links],
) -> None:
    """The fee leaves the venue's cash in its own asset; each strategy's share is booked in the
    fees ledger (a liquidation fill's in `liquidation_fees`, code LIQUIDATION_FEE), and a share
    paid in the base of a spot fill (`held_fee`) leaves its holding too, as it left the venue's
    cash: the spot quantity stays what the venue holds for it."""
    if not fill.fee:
        return
    venue, asset = fill.venue, fill.fee_asset
    code = TransferCode.LIQUIDATION_FEE if fill.liquidation else TransferCode.FEE
    account = chart.liquidation_fees if fill.liquidation else chart.fees_paid
    out.move(chart.cash_fees(venue, asset), chart.venue_cash(venue, asset), fill.fee, code, links)
    for strategy, share in sorted(shares.items()):
        paid = account(venue, fill.symbol, strategy, asset)
        out.move(paid, chart.fees_control(venue, asset), share, code, own[strategy])
    for part in slices:
        quantity = chart.position_quantity(venue, fill.symbol, part.strategy, fill.base, perpetual=False)
        control = chart.position_control(venue, fill.symbol, fill.base)
        out.move(control, quantity, part.held_fee, TransferCode.FEE, own[part.strategy])


def _hold(out: _Chain, books: Books, fill: FillEvent, part: Slice, links: Links) -> None:
    """The initial margin the position holds after the fill: pending, in cash and margin ledger."""
    if part.margin_after <= 0:
        return
    venue, quote = fill.venue, fill.money_asset
    key = chart.position_quantity(venue, fill.symbol, part.strategy, fill.position_asset, perpetual=True)
    before = books.balance(key)
    debits, credits = before.debits_posted, before.credits_posted
    if fill.side is Side.BUY:
        debits += part.quantity
    else:
        credits += part.quantity
    locked = chart.margin_locked(venue, fill.symbol, part.strategy, quote)
    pairs = (
        (chart.cash_margin(venue, quote), chart.venue_cash(venue, quote)),
        (locked, chart.margin_control(venue, quote)),
    )
    for index, (debit, credit) in enumerate(pairs):
        hold = hold_id(key.id, debits, credits, index)
        out.move(debit, credit, part.margin_after, TransferCode.MARGIN, links, TransferFlag.PENDING, id=hold)


def _open_holds_of(books: Books, fill: FillEvent, strategy: str) -> list[Transfer]:
    key = chart.position_quantity(fill.venue, fill.symbol, strategy, fill.position_asset, perpetual=True)
    balance = books.balance(key)
    found = []
    for index in (0, 1):
        held = books.pending.get(hold_id(key.id, balance.debits_posted, balance.credits_posted, index))
        if held is not None:
            found.append(held)
    return found


def open_holds(books: Books) -> list[Transfer]:
    """The margin holds a core rebuilt from balances has open: one pair per perpetual position
    whose margin account has a pending debit, named by `hold_id` (links and time unknown)."""
    holds = []
    locked_accounts = [a for a in books.accounts.values() if a.key.code == AccountCode.MARGIN_LOCKED]
    for account in sorted(locked_accounts, key=lambda a: a.id):
        key = account.key
        amount = books.balance(key).debits_pending
        quantity = books.quantity_account(key.venue, key.symbol, key.strategy)
        if not amount or quantity is None:
            continue
        qty = books.balance(quantity.key)
        pairs = (
            (chart.cash_margin(key.venue, key.asset), chart.venue_cash(key.venue, key.asset)),
            (key, chart.margin_control(key.venue, key.asset)),
        )
        for index, (debit, credit) in enumerate(pairs):
            holds.append(
                Transfer(
                    id=hold_id(quantity.id, qty.debits_posted, qty.credits_posted, index),
                    debit_account_id=debit.id,
                    credit_account_id=credit.id,
                    amount=amount,
                    ledger=debit.ledger,
                    code=int(TransferCode.MARGIN),
                    asset=key.asset,
                    ts_ns=0,
                    links=Links(event_id=""),
                    flags=TransferFlag.PENDING,
                )
            )
    return holds
