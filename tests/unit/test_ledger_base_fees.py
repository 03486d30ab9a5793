"""A spot fee paid in the base asset comes out of the holding (docs/ledger.md, "Fee"): Binance
takes a buy's fee from the base it brings in, so 1 FTM bought at 0.1 % holds 0.999 FTM. The
ledger kept 1 in `spot_quantity` while the venue's balance and the inspector's position held
0.999: after a round trip its position kept 0.001 FTM that nobody held, at a cost. Now the fee
leaves the strategy's `spot_quantity` as well as the venue's cash, the position moves by the
fill less the fee at the fill's price (cost 0.999 x p, as the inspector's entry), and the books
still balance per ledger and asset, for fees in the base, in the quote and in a third asset."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import pytest

from trademesh.core.domain.model import Fill, InstrumentKind, Liquidity, Side
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.policies import PolicySet
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.books import chain_balances, describe
from trademesh.core.ledger.engine.chart import TransferCode
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent
from trademesh.core.ledger.engine.model import ZERO, LedgerId, Links, Transfer
from trademesh.core.ledger.engine.reports import pnl, positions
from trademesh.core.ledger.engine.trips import RoundTrip, round_trips, settlement_assets

D = Decimal
VENUE, SYMBOL, BASE, QUOTE = "binance", "FTM/USDT", "FTM", "USDT"
BOUGHT_AT, SOLD_AT = D("0.7123"), D("0.7411")
RATE = D("0.001")
_ids = itertools.count(1)


@dataclass
class Books:
    """The ledger's core and the inspector's, fed the same fills; the venue's balances as the
    fills move them (base received less a fee in the base, quote paid, fee asset charged)."""

    ledger: LedgerCore
    inspector: InspectorCore
    venue: dict[str, Decimal]
    transfers: list[Transfer] = field(default_factory=list)  # the fills' chains, in order

    @classmethod
    def opened(cls) -> Books:
        opening = {QUOTE: D(1000), "BNB": D(1)}
        ledger = LedgerCore()
        for asset, amount in opening.items():
            posted = ledger.post(DepositEvent(f"opening/{VENUE}/{asset}", VENUE, asset, amount, 0))
            assert posted.posted, posted.refusal
        return cls(ledger, InspectorCore(PolicySet(), D(100_000), 0), dict(opening))

    def trade(self, side: Side, size: Decimal, price: Decimal, fee: Decimal, fee_asset: str) -> FillEvent:
        n = next(_ids)
        event = FillEvent(
            event_id=f"fill/{VENUE}/{n}", venue=VENUE, symbol=SYMBOL, base=BASE, quote=QUOTE,
            instrument=InstrumentKind.SPOT, side=side, price=price, size=size, fee=fee,
            fee_asset=fee_asset, ts_ns=n, links=Links(event_id="", fill_id=str(n), strategy_id="trend"),
        )  # fmt: skip
        posting = self.ledger.post(event)
        assert posting.chain is not None, posting.refusal
        assert all(v == 0 for v in chain_balances(posting.chain).values()), chain_balances(posting.chain)
        self.transfers.extend(posting.chain.transfers)
        fill = Fill(
            str(n), f"order-{n}", f"client-{n}", SYMBOL, side, price, size, fee, fee_asset,
            Liquidity.TAKER, f"trade-{n}", n,
        )  # fmt: skip
        self.inspector.on_fill(VENUE, fill, n)
        self.venue[BASE] = self.venue.get(BASE, ZERO) + side.sign * size
        self.venue[QUOTE] = self.venue.get(QUOTE, ZERO) - side.sign * size * price
        self.venue[fee_asset] = self.venue.get(fee_asset, ZERO) - fee
        return event

    def spot_quantity(self) -> Decimal:
        key = chart.position_quantity(VENUE, SYMBOL, "trend", BASE, perpetual=False)
        return self.ledger.books.balance(key).net_debit

    def cash(self, asset: str) -> Decimal:
        return self.ledger.books.balance(chart.venue_cash(VENUE, asset)).net_debit

    def inspector_position(self) -> Decimal:
        return self.inspector.book.positions.size((VENUE, SYMBOL))

    def realised(self) -> Decimal:
        key = chart.realised_pnl(VENUE, SYMBOL, "trend", QUOTE)
        return -self.ledger.books.balance(key).net_debit

    def fees(self, asset: str) -> Decimal:
        return self.ledger.books.balance(chart.fees_paid(VENUE, SYMBOL, "trend", asset)).net_debit


def assert_balanced(ledger: LedgerCore) -> None:
    """Every ledger, in every asset, sums to zero over all its accounts."""
    sums: dict[tuple[LedgerId, str], Decimal] = {}
    for account_id, balance in ledger.balances.items():
        key = ledger.accounts[account_id].key
        sums[(key.ledger, key.asset)] = sums.get((key.ledger, key.asset), ZERO) + balance.net_debit
    assert all(total == 0 for total in sums.values()), sums


def assert_agree(books: Books) -> None:
    """The strategy's spot quantity is what the venue holds of the base (no base deposited) and
    the inspector's position; the cash ledger is the venue's balances, exactly."""
    assert books.spot_quantity() == books.venue[BASE] == books.inspector_position()
    for asset, total in books.venue.items():
        assert books.cash(asset) == total, asset
    assert_balanced(books.ledger)


def test_a_buy_paying_its_fee_in_the_base_holds_its_size_less_the_fee() -> None:
    books = Books.opened()
    books.trade(Side.BUY, D(1), BOUGHT_AT, D("0.001"), BASE)
    assert books.spot_quantity() == D("0.999")
    assert books.cash(BASE) == D("0.999") and books.inspector_position() == D("0.999")
    # What came in less the fee, at the fill's price: the inspector's entry (0.999 at 0.7123).
    assert books.ledger.position(VENUE, SYMBOL, "trend") == (D("0.999"), D("0.999") * BOUGHT_AT)
    assert books.fees(BASE) == D("0.001")
    assert books.cash(QUOTE) == D(1000) - BOUGHT_AT
    assert_agree(books)


def test_the_fee_in_the_base_posts_out_of_the_spot_quantity_account() -> None:
    books = Books.opened()
    books.trade(Side.BUY, D(1), BOUGHT_AT, D("0.001"), BASE)
    keys = {account_id: account.key for account_id, account in books.ledger.accounts.items()}
    fees = [
        (t.ledger, describe(keys[t.debit_account_id]), describe(keys[t.credit_account_id]), t.amount)
        for t in books.transfers
        if t.code == TransferCode.FEE
    ]
    assert fees == [
        (LedgerId.CASH, "cash_fees binance/FTM", "venue_cash binance/FTM", D("0.001")),
        (
            LedgerId.FEES,
            "fees_paid binance/FTM/USDT strategy 'trend' (FTM)",
            "fees_control binance/FTM",
            D("0.001"),
        ),
        (
            LedgerId.POSITION,
            "position_control binance/FTM/USDT strategy '' (FTM)",
            "spot_quantity binance/FTM/USDT strategy 'trend' (FTM)",
            D("0.001"),
        ),
    ]


def test_a_round_trip_with_the_buys_fee_in_the_base_and_the_sells_in_the_quote_leaves_nothing_held() -> None:
    books = Books.opened()
    buy = books.trade(Side.BUY, D(1), BOUGHT_AT, D("0.001"), BASE)
    sold_fee = D("0.999") * SOLD_AT * RATE
    sell = books.trade(Side.SELL, D("0.999"), SOLD_AT, sold_fee, QUOTE)
    assert books.spot_quantity() == 0 and books.cash(BASE) == 0 and books.inspector_position() == 0
    assert books.ledger.position(VENUE, SYMBOL, "trend") == (ZERO, ZERO)
    assert books.cash(QUOTE) == D(1000) - BOUGHT_AT + D("0.999") * SOLD_AT - sold_fee
    # Realised on the 0.999 held, as the inspector's (its fees apart); each fee in its asset.
    assert books.realised() == D("0.999") * (SOLD_AT - BOUGHT_AT) == D("0.0287712")
    assert books.realised() == books.inspector.book.positions.positions[(VENUE, SYMBOL)].realized
    assert (books.fees(BASE), books.fees(QUOTE)) == (D("0.001"), sold_fee)
    # Closed: no position view left with a quantity or a cost, no unrealised PnL at any mark.
    (view,) = positions(books.ledger.accounts, books.ledger.balances)
    assert (view.quantity, view.cost) == (ZERO, ZERO)
    lines = pnl(books.ledger.accounts, books.ledger.balances, {(VENUE, SYMBOL): D(5)})
    assert lines[("trend", QUOTE)].unrealised == 0
    assert lines[("trend", BASE)].fees == D("-0.001")
    # The round trip closed (flat again), its result the realised PnL less the fee in the quote.
    accounts = books.ledger.accounts
    (trip,) = round_trips(books.transfers, accounts, settlement_assets(accounts.values()))
    result = D("0.0287712") - sold_fee
    assert trip == RoundTrip("trend", VENUE, SYMBOL, buy.ts_ns, sell.ts_ns, QUOTE, result)
    assert_agree(books)


def test_a_sell_paying_its_fee_in_the_base_gives_up_its_size_and_the_fee() -> None:
    books = Books.opened()
    books.trade(Side.BUY, D(1), BOUGHT_AT, D("0.001"), BASE)
    # All that is held: 0.998001 sold and its fee of 0.000999 FTM.
    books.trade(Side.SELL, D("0.998001"), SOLD_AT, D("0.000999"), BASE)
    assert books.spot_quantity() == 0 and books.cash(BASE) == 0 and books.inspector_position() == 0
    assert books.ledger.position(VENUE, SYMBOL, "trend") == (ZERO, ZERO)
    assert books.realised() == D("0.999") * (SOLD_AT - BOUGHT_AT)
    assert books.fees(BASE) == D("0.001999")
    assert_agree(books)


def test_a_fee_in_a_third_asset_leaves_the_holding_whole() -> None:
    books = Books.opened()
    books.trade(Side.BUY, D(1), BOUGHT_AT, D("0.0005"), "BNB")
    assert books.spot_quantity() == 1 == books.cash(BASE) == books.inspector_position()
    assert books.ledger.position(VENUE, SYMBOL, "trend") == (D(1), BOUGHT_AT)
    books.trade(Side.SELL, D(1), SOLD_AT, D("0.0005"), "BNB")
    assert books.spot_quantity() == 0 and books.cash("BNB") == D("0.999")
    assert books.realised() == SOLD_AT - BOUGHT_AT and books.fees("BNB") == D("0.001")
    assert_agree(books)


FEE_ASSETS = (BASE, QUOTE, "BNB")
PAIRS = list(itertools.product(FEE_ASSETS, FEE_ASSETS))


@pytest.mark.parametrize(("bought_in", "sold_in"), PAIRS, ids=[f"buy-{b}-sell-{s}" for b, s in PAIRS])
def test_buys_and_sells_leave_the_ledger_agreeing_with_the_venue_and_the_inspector(
    bought_in: str, sold_in: str
) -> None:
    """Two buys and two sells of what is held, every fee 0.1 % in its asset (BNB's at a tenth
    of the quote's worth): after each fill the spot quantity is the venue's base and the
    inspector's position, the cash ledger the venue's balances; realised PnL less the cost still
    held is the quote's cash flow plus the fees taken from the holding, at their fills' prices."""
    books = Books.opened()
    flow = ZERO
    plan = [
        (Side.BUY, D("1.5"), BOUGHT_AT, bought_in),
        (Side.BUY, D("0.25"), D("0.7001"), bought_in),
        (Side.SELL, D("0.6"), SOLD_AT, sold_in),
        (Side.SELL, None, D("0.7299"), sold_in),  # the rest
    ]
    for side, size, price, asset in plan:
        if size is None:
            size, fee = _all_held(books.spot_quantity(), price, asset)
        else:
            fee = _fee(size, price, asset)
        books.trade(side, size, price, fee, asset)
        flow -= side.sign * size * price
        if asset == BASE:
            flow += fee * price
        assert_agree(books)
    quantity, cost = books.ledger.position(VENUE, SYMBOL, "trend")
    assert quantity == 0 and cost == 0
    assert books.realised() - cost == flow


def _all_held(held: Decimal, price: Decimal, asset: str) -> tuple[Decimal, Decimal]:
    """A sell of everything held, and its fee: in the base, the fee comes off the holding too."""
    if asset != BASE:
        return held, _fee(held, price, asset)
    size = (held / (1 + RATE)).quantize(D("1e-8"), rounding=ROUND_DOWN)
    return size, held - size


def _fee(size: Decimal, price: Decimal, asset: str) -> Decimal:
    if asset == BASE:
        return size * RATE
    if asset == QUOTE:
        return size * price * RATE
    return size * price * RATE / 10
