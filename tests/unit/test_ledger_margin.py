"""The ledger books a perpetual's margin as the venues do (docs/ledger.md, "Margin and
liquidation"): a position's initial margin is its cost at entry / the leverage in force, held
from the settle asset's cash in the margin ledger while the position is open, released in
proportion as it shrinks, and a liquidation fill books the realised loss, a liquidation fee of
its own account, and releases the margin. Amounts are worked by hand; after each event the
books balance per ledger and asset, the cash ledger's venue cash is the venue's total and the
margin ledger's sum the venue's position margin (Balance.position_margin), worked by hand as
the venue reckons them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.books import chain_balances, describe
from trademesh.core.ledger.engine.chart import AccountCode, TransferCode
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent, FundingEvent
from trademesh.core.ledger.engine.model import Chain, Links, Transfer, TransferFlag
from trademesh.core.ledger.engine.reports import pnl, positions
from trademesh.core.ledger.engine.trips import count_trips, round_trips, settlement_assets
from trademesh.core.platform.errors import InvalidArgument

D = Decimal
V, SYMBOL = "sim", "BTC/USDT:USDT"
_seq = iter(range(1, 10**9))


def perp(
    side: Side,
    contracts: str,
    price: str,
    fee: str,
    *,
    strategy: str = "trend",
    leverage: str = "10",
    liquidation: bool = False,
) -> FillEvent:
    """A fill of BTC/USDT:USDT contracts of 0.01 BTC, the fee in USDT."""
    n = next(_seq)
    return FillEvent(
        event_id=f"fill/{V}/{n}", venue=V, symbol=SYMBOL, base="BTC", quote="USDT",
        instrument=InstrumentKind.PERPETUAL, side=side, price=D(price), size=D(contracts),
        fee=D(fee), fee_asset="USDT", ts_ns=n,
        links=Links(event_id="", fill_id=str(n), strategy_id=strategy), contract_size=D("0.01"),
        leverage=D(leverage), liquidation=liquidation,
    )  # fmt: skip


def post(core: LedgerCore, event: FillEvent | FundingEvent | DepositEvent) -> Chain:
    posting = core.post(event)
    assert posting.refusal == "" and posting.chain is not None, posting.refusal
    assert not any(chain_balances(posting.chain).values())
    return posting.chain


def rows(chain: Chain) -> list[tuple[str, str, str, Decimal, str]]:
    """(debit, credit, code, amount, flag) of each transfer, as docs/ledger.md's tables."""
    keys = {account.id: account.key for account in chain.accounts}
    flags = {TransferFlag.PENDING: "pending", TransferFlag.VOID_PENDING: "void_pending"}
    return [
        (
            describe(keys[t.debit_account_id]),
            describe(keys[t.credit_account_id]),
            TransferCode(t.code).name.lower(),
            t.amount,
            flags.get(t.flags, ""),
        )
        for t in chain.transfers
    ]


def name(account: str, asset: str = "USDT", symbol: str = SYMBOL, venue: str = V) -> str:
    keys = {
        "quantity": chart.position_quantity(venue, symbol, "trend", "BTC", perpetual=True),
        "control_base": chart.position_control(venue, symbol, "BTC"),
        "cost": chart.position_cost(venue, symbol, "trend", asset),
        "control": chart.position_control(venue, symbol, asset),
        "realised": chart.realised_pnl(venue, symbol, "trend", asset),
        "realised_control": chart.realised_control(venue, asset),
        "cash": chart.venue_cash(venue, asset),
        "market": chart.market(venue, asset),
        "cash_fees": chart.cash_fees(venue, asset),
        "fees": chart.fees_paid(venue, symbol, "trend", asset),
        "liquidation_fees": chart.liquidation_fees(venue, symbol, "trend", asset),
        "fees_control": chart.fees_control(venue, asset),
        "cash_margin": chart.cash_margin(venue, asset),
        "locked": chart.margin_locked(venue, symbol, "trend", asset),
        "margin_control": chart.margin_control(venue, asset),
    }
    return describe(keys[account])


def cash_total(core: LedgerCore, venue: str, asset: str) -> Decimal:
    """The venue's balance as the ledger has it: venue_cash's posted balance (free + locked)."""
    return core.books.balance(chart.venue_cash(venue, asset)).net_debit


def position_margin(core: LedgerCore, venue: str, asset: str) -> Decimal:
    """The margin the venue's positions hold in `asset` as the ledger has it: the margin
    ledger's accounts summed, which the cash ledger's hold must equal too."""
    locked = sum(
        (
            core.books.balance(a.key).debits_pending
            for a in core.accounts.values()
            if a.key.code == AccountCode.MARGIN_LOCKED and a.key.venue == venue and a.key.asset == asset
        ),
        D(0),
    )
    assert core.books.balance(chart.cash_margin(venue, asset)).debits_pending == locked
    return locked


def free_cash(core: LedgerCore, venue: str, asset: str) -> Decimal:
    balance = core.books.balance(chart.venue_cash(venue, asset))
    return balance.debits_posted - balance.credits_posted - balance.credits_pending


def test_a_leveraged_position_opens_shrinks_and_is_liquidated_linear() -> None:
    """1,000 USDT; long 10 contracts (0.1 BTC) at 30,000 at 10x; 4 sold at 31,000; the other 6
    liquidated at the bankruptcy price 27,000 (entry x (1 - 1/10)) with a liquidation fee."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "USDT", D(1000), 0))
    # Fully funded (leverage 1), the notional of 3,000 is more than the 1,000 held: refused.
    refused = core.post(perp(Side.BUY, "10", "30000", "1.2", leverage="1"))
    assert refused.chain is None and "venue_cash" in refused.refusal

    # Open at 10x: notional 3,000, margin 300, fee 0.04% = 1.2.
    opened = post(core, perp(Side.BUY, "10", "30000", "1.2"))
    assert rows(opened) == [
        (name("quantity"), name("control_base"), "trade", D("0.1"), ""),
        (name("cost"), name("control"), "trade", D(3000), ""),
        (name("cash_fees"), name("cash"), "fee", D("1.2"), ""),
        (name("fees"), name("fees_control"), "fee", D("1.2"), ""),
        (name("cash_margin"), name("cash"), "margin", D(300), "pending"),
        (name("locked"), name("margin_control"), "margin", D(300), "pending"),
    ]
    # The venue: 998.8 USDT in all, 300 of it the position's margin, 698.8 free.
    assert (cash_total(core, V, "USDT"), position_margin(core, V, "USDT")) == (D("998.8"), D(300))
    assert free_cash(core, V, "USDT") == D("698.8")

    # Partial close: 4 contracts (0.04) at 31,000. Cost released 3000 x 0.4 = 1,200; realised
    # 1,240 - 1,200 = 40; fee 0.496; the margin kept 1,800 / 10 = 180.
    reduced = post(core, perp(Side.SELL, "4", "31000", "0.496"))
    assert rows(reduced) == [
        (name("cash_margin"), name("cash"), "margin", D(300), "void_pending"),
        (name("locked"), name("margin_control"), "margin", D(300), "void_pending"),
        (name("control_base"), name("quantity"), "trade", D("0.04"), ""),
        (name("control"), name("cost"), "cost_released", D(1200), ""),
        (name("realised_control"), name("realised"), "realised", D(40), ""),
        (name("cash"), name("market"), "realised", D(40), ""),
        (name("cash_fees"), name("cash"), "fee", D("0.496"), ""),
        (name("fees"), name("fees_control"), "fee", D("0.496"), ""),
        (name("cash_margin"), name("cash"), "margin", D(180), "pending"),
        (name("locked"), name("margin_control"), "margin", D(180), "pending"),
    ]
    assert (cash_total(core, V, "USDT"), position_margin(core, V, "USDT")) == (D("1038.304"), D(180))

    # Liquidated: the venue's own order (no strategy) sells the 6 left (0.06) at 27,000: the
    # loss 1,620 - 1,800 = -180 is the margin; the liquidation fee 0.5% of 1,620 = 8.1.
    liquidated = post(core, perp(Side.SELL, "6", "27000", "8.1", strategy="", liquidation=True))
    assert rows(liquidated) == [
        (name("cash_margin"), name("cash"), "margin", D(180), "void_pending"),
        (name("locked"), name("margin_control"), "margin", D(180), "void_pending"),
        (name("control_base"), name("quantity"), "trade", D("0.06"), ""),
        (name("control"), name("cost"), "cost_released", D(1800), ""),
        (name("realised"), name("realised_control"), "realised", D(180), ""),
        (name("market"), name("cash"), "realised", D(180), ""),
        (name("cash_fees"), name("cash"), "liquidation_fee", D("8.1"), ""),
        (name("liquidation_fees"), name("fees_control"), "liquidation_fee", D("8.1"), ""),
    ]
    # The venue after it: 1,038.304 - 180 - 8.1 = 850.204, no margin held, no position.
    assert (cash_total(core, V, "USDT"), position_margin(core, V, "USDT")) == (D("850.204"), D(0))
    assert core.position(V, SYMBOL, "trend") == (D(0), D(0))
    # Realised -140, fees 1.696 and the liquidation fee 8.1 apart: PnL -149.796 = the cash lost.
    liq_fees = core.books.balance(chart.liquidation_fees(V, SYMBOL, "trend", "USDT")).net_debit
    trading_fees = core.books.balance(chart.fees_paid(V, SYMBOL, "trend", "USDT")).net_debit
    assert (liq_fees, trading_fees) == (D("8.1"), D("1.696"))
    line = pnl(core.accounts, core.balances)[("trend", "USDT")]
    assert (line.realised, line.fees, line.total) == (D(-140), D("-9.796"), D("-149.796"))
    assert line.total == cash_total(core, V, "USDT") - 1000


def test_a_liquidation_fill_is_a_round_trip_that_bears_its_fee() -> None:
    """The liquidation closes the trip: its result is its realised PnL less both fees."""
    core, transfers = LedgerCore(), list[Transfer]()
    events: list[FillEvent | DepositEvent] = [
        DepositEvent("deposit/1", V, "USDT", D(1000), 0),
        perp(Side.BUY, "10", "30000", "1.2"),
        perp(Side.SELL, "10", "27000", "8.1", strategy="", liquidation=True),
    ]
    for event in events:
        transfers.extend(post(core, event).transfers)
    trips = round_trips(transfers, core.accounts, settlement_assets(core.accounts.values()))
    assert [(t.strategy, t.pnl) for t in trips] == [("trend", D("-309.3"))]
    assert count_trips(trips, 0)[("trend", "USDT")].winners == 0


def test_a_fill_at_a_new_leverage_re_margins_the_position() -> None:
    """The venues reckon a position's margin at the leverage in force: long 0.1 at 30,000 at
    10x holds 300; 0.1 more at 32,000 at 5x holds (3,000 + 3,200) / 5 = 1,240."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "USDT", D(2000), 0))
    post(core, perp(Side.BUY, "10", "30000", "0"))
    increased = post(core, perp(Side.BUY, "10", "32000", "0", leverage="5"))
    assert [r[2:] for r in rows(increased)][-2:] == [("margin", D(1240), "pending")] * 2
    assert core.margin(V, SYMBOL, "trend", "USDT") == D(1240)
    # A short flip at 20x: sells 0.3 at 31,000: closes 0.2, opens 0.1 short (cost -3,100),
    # which holds 3,100 / 20 = 155.
    post(core, perp(Side.SELL, "30", "31000", "0", leverage="20"))
    assert core.position(V, SYMBOL, "trend") == (D("-0.1"), D(-3100))
    assert position_margin(core, V, "USDT") == D(155)


def test_a_partial_liquidation_keeps_the_margin_of_what_is_left() -> None:
    """A liquidation of part of a short (the venue cutting a tier's worth) realises its loss on
    that part, charges its fee, and keeps the rest's margin: short 0.2 at 30,000 at 20x holds
    300; 0.05 bought back by the venue at 31,400 loses 70 and keeps 4,500 / 20 = 225."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "USDT", D(500), 0))
    post(core, perp(Side.SELL, "20", "30000", "0", leverage="20"))
    assert position_margin(core, V, "USDT") == D(300)
    post(core, perp(Side.BUY, "5", "31400", "0.785", strategy="", leverage="20", liquidation=True))
    assert core.position(V, SYMBOL, "trend") == (D("-0.15"), D(-4500))
    assert position_margin(core, V, "USDT") == D(225)
    assert cash_total(core, V, "USDT") == D(500) - 70 - D("0.785")
    realised = core.books.balance(chart.realised_pnl(V, SYMBOL, "trend", "USDT")).net_debit
    assert realised == D(70)  # a loss debits it
    [view] = [p for p in positions(core.accounts, core.balances) if p.strategy == "trend"]
    assert view.margin == D(225)


def test_only_a_perpetual_is_liquidated() -> None:
    with pytest.raises(InvalidArgument) as raised:
        FillEvent(
            event_id="fill/sim/x", venue=V, symbol="BTC/USDT", base="BTC", quote="USDT",
            instrument=InstrumentKind.SPOT, side=Side.SELL, price=D(1), size=D(1), fee=D(0),
            fee_asset="USDT", ts_ns=1, links=Links(event_id=""), liquidation=True,
        )  # fmt: skip
    assert "liquidation" in str(raised.value)


def test_a_core_rebuilt_after_a_liquidation_posts_the_same_chains() -> None:
    """Margin holds are named from the balances alone: a core rebuilt between the reduce and the
    liquidation voids the same hold and posts the same chain."""
    events: list[FillEvent | DepositEvent] = [
        DepositEvent("deposit/1", V, "USDT", D(1000), 0),
        perp(Side.BUY, "10", "30000", "1.2"),
        perp(Side.SELL, "4", "31000", "0.496"),
    ]
    last = perp(Side.SELL, "6", "27000", "8.1", strategy="", liquidation=True)
    core = LedgerCore()
    for event in events:
        post(core, event)
    rebuilt = LedgerCore(core.accounts.values(), core.balances)
    assert post(rebuilt, last) == post(core, last)
