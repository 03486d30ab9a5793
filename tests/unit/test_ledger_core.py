"""The ledger's engine core on hand-worked examples: every posting rule with its amounts worked
out by hand (docs/ledger.md has the same tables), refusals that leave the books untouched,
attribution of fills no strategy placed, a core rebuilt from balances, and the reports."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from decimal import Decimal

import pytest

from trademesh.core.domain.cost_share import quantum_of
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.allocate import split
from trademesh.core.ledger.engine.books import chain_balances, describe
from trademesh.core.ledger.engine.chart import AccountCode, TransferCode
from trademesh.core.ledger.engine.core import LedgerCore, Posting
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent, FundingEvent
from trademesh.core.ledger.engine.model import (
    ZERO,
    Account,
    AccountKey,
    Chain,
    LedgerBalance,
    LedgerId,
    Links,
    Transfer,
    TransferFlag,
    transfer_id,
)
from trademesh.core.ledger.engine.reports import PnlLine, pnl, positions
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

D = Decimal
V = "binance"
SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"
_seq = iter(range(1, 10**9))


def deposit(core: LedgerCore, amount: str, asset: str = "USDT", venue: str = V) -> Posting:
    n = next(_seq)
    return core.post(DepositEvent(f"deposit/{n}", venue, asset, D(amount), n))


def fill(
    side: Side,
    size: str,
    price: str,
    strategy: str = "trend",
    *,
    perp: bool = False,
    fee: str = "0",
    fee_asset: str = "USDT",
    leverage: str = "1",
    contract_size: str = "1",
    venue: str = V,
) -> FillEvent:
    n = next(_seq)
    return FillEvent(
        event_id=f"fill/{venue}/{n}",
        venue=venue,
        symbol=PERP if perp else SPOT,
        base="BTC",
        quote="USDT",
        instrument=InstrumentKind.PERPETUAL if perp else InstrumentKind.SPOT,
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        fee_asset=fee_asset,
        ts_ns=n,
        links=Links(event_id="", fill_id=str(n), strategy_id=strategy),
        contract_size=D(contract_size),
        leverage=D(leverage),
    )


def funding(amount: str, strategy: str = "") -> FundingEvent:
    n = next(_seq)
    return FundingEvent(
        f"funding/{n}", V, PERP, "USDT", D(amount), n, Links(event_id="", strategy_id=strategy)
    )


def post(core: LedgerCore, event: FillEvent | FundingEvent) -> Chain:
    posting = core.post(event)
    assert posting.refusal == "" and posting.chain is not None
    assert not any(chain_balances(posting.chain).values())
    return posting.chain


def net(core: LedgerCore, key: AccountKey) -> Decimal:
    """Debits less credits posted."""
    return core.books.balance(key).net_debit


def cash(core: LedgerCore, asset: str = "USDT") -> Decimal:
    return net(core, chart.venue_cash(V, asset))


def rows(chain: Chain) -> list[tuple[int, str, str, Decimal]]:
    """(transfer code, debit, credit, amount) of each transfer, accounts as refusals name them."""
    keys = {account.id: account.key for account in chain.accounts}
    return [
        (t.code, describe(keys[t.debit_account_id]), describe(keys[t.credit_account_id]), t.amount)
        for t in chain.transfers
    ]


def snapshot(core: LedgerCore) -> tuple[dict[str, LedgerBalance], dict[str, Account], dict[str, Transfer]]:
    return copy.deepcopy(dict(core.balances)), dict(core.accounts), dict(core.books.pending)


# --- deposits ---------------------------------------------------------------------------------


def test_a_deposit_credits_equity_and_a_withdrawal_past_the_cash_is_refused_whole() -> None:
    core = LedgerCore()
    assert deposit(core, "1000").posted
    assert deposit(core, "-300").posted
    assert cash(core) == 700
    assert net(core, chart.equity(V, "USDT")) == -700  # credit-normal: 700 of capital in
    before = snapshot(core)
    refused = deposit(core, "-700.01")
    assert refused.chain is None
    assert (
        "venue_cash binance/USDT: credits would exceed debits (CREDITS_MUST_NOT_EXCEED_DEBITS)"
        in refused.refusal
    )
    assert snapshot(core) == before


# --- spot -------------------------------------------------------------------------------------


def test_spot_buys_then_a_sell_realise_exactly_by_average_cost() -> None:
    core = LedgerCore()
    deposit(core, "50000")
    post(core, fill(Side.BUY, "0.5", "60000", fee="3"))
    post(core, fill(Side.BUY, "0.25", "64000", fee="1.6"))
    assert core.position(V, SPOT, "trend") == (D("0.75"), D(46000))  # average 61333.33...
    sell = post(core, fill(Side.SELL, "0.3", "65000", fee="1.95"))
    # Released cost 46000 x 0.3 / 0.75 = 18400; proceeds 0.3 x 65000 = 19500; realised 1100.
    assert rows(sell) == [
        (TransferCode.TRADE, "venue_cash binance/USDT", "market binance/USDT", D(19500)),
        (TransferCode.TRADE, "market binance/BTC", "venue_cash binance/BTC", D("0.3")),
        (
            TransferCode.TRADE,
            "position_control binance/BTC/USDT strategy '' (BTC)",
            "spot_quantity binance/BTC/USDT strategy 'trend' (BTC)",
            D("0.3"),
        ),
        (
            TransferCode.COST_RELEASED,
            "position_control binance/BTC/USDT strategy '' (USDT)",
            "position_cost binance/BTC/USDT strategy 'trend' (USDT)",
            D(18400),
        ),
        (
            TransferCode.REALISED,
            "realised_control binance/USDT",
            "realised_pnl binance/BTC/USDT strategy 'trend' (USDT)",
            D(1100),
        ),
        (TransferCode.FEE, "cash_fees binance/USDT", "venue_cash binance/USDT", D("1.95")),
        (
            TransferCode.FEE,
            "fees_paid binance/BTC/USDT strategy 'trend' (USDT)",
            "fees_control binance/USDT",
            D("1.95"),
        ),
    ]
    assert core.position(V, SPOT, "trend") == (D("0.45"), D(27600))
    assert cash(core) == D("23493.45")  # 50000 - 30000 - 3 - 16000 - 1.6 + 19500 - 1.95
    assert cash(core, "BTC") == D("0.45")
    assert net(core, chart.realised_pnl(V, SPOT, "trend", "USDT")) == -1100
    assert net(core, chart.fees_paid(V, SPOT, "trend", "USDT")) == D("6.55")
    # Selling the rest realises the rest: 0.45 x 62000 - 27600 = 300.
    post(core, fill(Side.SELL, "0.45", "62000"))
    assert core.position(V, SPOT, "trend") == (ZERO, ZERO)
    assert net(core, chart.realised_pnl(V, SPOT, "trend", "USDT")) == -1400


def test_a_fee_in_a_third_asset_posts_in_its_own_asset() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    deposit(core, "1", asset="BNB")
    chain = post(core, fill(Side.BUY, "0.01", "60000", fee="0.0015", fee_asset="BNB"))
    bnb = [t for t in chain.transfers if t.asset == "BNB"]
    assert [(t.ledger, t.code, t.amount) for t in bnb] == [
        (LedgerId.CASH, TransferCode.FEE, D("0.0015")),
        (LedgerId.FEES, TransferCode.FEE, D("0.0015")),
    ]
    assert cash(core, "BNB") == D("0.9985")
    assert cash(core) == 400  # the quote asset pays the notional only
    assert net(core, chart.fees_paid(V, SPOT, "trend", "BNB")) == D("0.0015")
    assert set(chain_balances(chain)) >= {(LedgerId.CASH, "BNB"), (LedgerId.FEES, "BNB")}


def test_a_rebate_credits_the_fees_and_adds_to_cash() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    post(core, fill(Side.BUY, "0.01", "60000", fee="-0.12"))
    assert cash(core) == D("400.12")
    assert net(core, chart.fees_paid(V, SPOT, "trend", "USDT")) == D("-0.12")


def test_a_spot_sell_beyond_the_holding_is_refused_and_changes_nothing() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    deposit(core, "5", asset="BTC")  # the venue holds BTC, but no strategy does
    post(core, fill(Side.BUY, "0.01", "60000"))
    before = snapshot(core)
    refused = core.post(fill(Side.SELL, "0.02", "61000"))
    assert refused.chain is None
    assert (
        "spot_quantity binance/BTC/USDT strategy 'trend' (BTC): credits would exceed debits"
        in refused.refusal
    )
    assert "(CREDITS_MUST_NOT_EXCEED_DEBITS)" in refused.refusal
    assert snapshot(core) == before


# --- perpetuals and margin --------------------------------------------------------------------


def test_a_perpetual_opens_increases_reduces_and_closes_with_margin_held_and_released() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    cash_key = chart.venue_cash(V, "USDT")
    # Open: 2 contracts of 0.01 BTC at 30000, 10x: notional 600, margin 60.
    opened = post(core, fill(Side.BUY, "2", "30000", perp=True, contract_size="0.01", leverage="10"))
    holds = [t for t in opened.transfers if t.flags & TransferFlag.PENDING]
    assert [(t.ledger, t.amount) for t in holds] == [(LedgerId.CASH, D(60)), (LedgerId.MARGIN, D(60))]
    assert core.position(V, PERP, "trend") == (D("0.02"), D(600))
    assert core.margin(V, PERP, "trend", "USDT") == 60
    assert core.books.balance(cash_key).credits_pending == 60  # 940 free
    # Increase: 1 contract at 33000: notional 330, margin 60 + 33 = 93.
    increased = post(core, fill(Side.BUY, "1", "33000", perp=True, contract_size="0.01", leverage="10"))
    voids = [t for t in increased.transfers if t.flags & TransferFlag.VOID_PENDING]
    assert [t.pending_id for t in voids] == [t.id for t in holds]
    assert core.position(V, PERP, "trend") == (D("0.03"), D(930))
    assert core.margin(V, PERP, "trend", "USDT") == 93
    # Reduce: 2 contracts at 34000: releases 930 x 0.02 / 0.03 = 620 of cost, realises
    # 680 - 620 = 60 (settled in cash), keeps 93 x 1/3 = 31 of margin.
    reduced = post(core, fill(Side.SELL, "2", "34000", perp=True, contract_size="0.01", leverage="10"))
    assert (TransferCode.REALISED, "venue_cash binance/USDT", "market binance/USDT", D(60)) in rows(reduced)
    assert core.position(V, PERP, "trend") == (D("0.01"), D(310))
    assert core.margin(V, PERP, "trend", "USDT") == 31
    assert cash(core) == 1060
    # Close: 1 contract at 29000: realises 290 - 310 = -20, releases the margin.
    closed = post(core, fill(Side.SELL, "1", "29000", perp=True, contract_size="0.01", leverage="10"))
    assert not [t for t in closed.transfers if t.flags & TransferFlag.PENDING]
    assert len([t for t in closed.transfers if t.flags & TransferFlag.VOID_PENDING]) == 2
    assert core.position(V, PERP, "trend") == (ZERO, ZERO)
    assert core.margin(V, PERP, "trend", "USDT") == 0
    assert core.books.balance(cash_key).credits_pending == 0
    assert cash(core) == 1040
    assert net(core, chart.realised_pnl(V, PERP, "trend", "USDT")) == -40  # 60 - 20
    assert not core.books.pending


def test_a_perpetual_flips_from_long_to_short() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    post(core, fill(Side.BUY, "1", "100", perp=True, leverage="2"))  # margin 50
    flipped = post(core, fill(Side.SELL, "3", "110", perp=True, leverage="2"))
    # Closes the long (realises 10) and opens 2 short at 110: cost -220, margin 220 / 2 = 110.
    assert core.position(V, PERP, "trend") == (D(-2), D(-220))
    assert core.margin(V, PERP, "trend", "USDT") == 110
    assert net(core, chart.realised_pnl(V, PERP, "trend", "USDT")) == -10
    assert cash(core) == 1010
    codes = [(t.code, t.flags) for t in flipped.transfers]
    assert codes[:2] == [(TransferCode.MARGIN, TransferFlag.VOID_PENDING)] * 2
    assert codes[-2:] == [(TransferCode.MARGIN, TransferFlag.PENDING)] * 2
    # Buying 2 back at 100 realises 220 - 200 = 20 on the short.
    post(core, fill(Side.BUY, "2", "100", perp=True, leverage="2"))
    assert core.position(V, PERP, "trend") == (ZERO, ZERO)
    assert net(core, chart.realised_pnl(V, PERP, "trend", "USDT")) == -30
    assert cash(core) == 1030


def test_margin_the_free_cash_cannot_cover_refuses_the_fill_whole() -> None:
    core = LedgerCore()
    deposit(core, "100")
    post(core, fill(Side.BUY, "1", "500", perp=True, leverage="10"))  # margin 50
    before = snapshot(core)
    refused = core.post(fill(Side.BUY, "1", "600", perp=True, leverage="10", fee="0.5"))  # 50 + 60 > 100
    assert refused.chain is None
    assert (
        "venue_cash binance/USDT: credits would exceed debits (CREDITS_MUST_NOT_EXCEED_DEBITS)"
        in refused.refusal
    )
    assert snapshot(core) == before


def test_a_loss_settles_from_cash_the_margin_frees() -> None:
    core = LedgerCore()
    deposit(core, "100")
    post(core, fill(Side.BUY, "1", "1000", perp=True, leverage="10"))  # margin 100: nothing free
    post(core, fill(Side.SELL, "1", "920", perp=True, leverage="10"))  # -80, paid once released
    assert cash(core) == 20
    assert core.books.balance(chart.venue_cash(V, "USDT")).credits_pending == 0


# --- funding ----------------------------------------------------------------------------------


def test_funding_to_its_strategy_and_shared_among_holders() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    post(core, fill(Side.BUY, "3", "100", "a", perp=True))
    post(core, fill(Side.BUY, "1", "100", "b", perp=True))
    post(core, funding("5", "a"))
    chain = post(core, funding("-3"))  # longs pay: 3:1
    assert rows(chain) == [
        (TransferCode.FUNDING, "cash_funding binance/USDT", "venue_cash binance/USDT", D(3)),
        (
            TransferCode.FUNDING,
            "funding_pnl binance/BTC/USDT:USDT strategy 'a' (USDT)",
            "funding_control binance/USDT",
            D("2.25"),
        ),
        (
            TransferCode.FUNDING,
            "funding_pnl binance/BTC/USDT:USDT strategy 'b' (USDT)",
            "funding_control binance/USDT",
            D("0.75"),
        ),
    ]
    assert net(core, chart.funding_pnl(V, PERP, "a", "USDT")) == D("-2.75")  # +5 - 2.25
    assert cash(core) == 10002
    # A short holder's share of what longs pay is received: a 3, b 1, c -2 net 2 long; 4 paid
    # is 2 a unit: a pays 6, b 2, c receives 4.
    post(core, fill(Side.SELL, "2", "100", "c", perp=True))
    post(core, funding("-4"))
    assert net(core, chart.funding_pnl(V, PERP, "a", "USDT")) == D("3.25")
    assert net(core, chart.funding_pnl(V, PERP, "b", "USDT")) == D("2.75")
    assert net(core, chart.funding_pnl(V, PERP, "c", "USDT")) == D(-4)


def test_funding_nobody_holds_is_unattributed() -> None:
    core = LedgerCore()
    deposit(core, "10")
    post(core, funding("1.5"))
    assert net(core, chart.funding_pnl(V, PERP, "", "USDT")) == D("-1.5")
    assert cash(core) == D("11.5")


# --- attribution ------------------------------------------------------------------------------


def test_an_unattributed_reducing_fill_is_shared_pro_rata_among_the_holders() -> None:
    core = LedgerCore()
    deposit(core, "100000")
    for strategy, size in (("a", "0.5"), ("b", "0.25"), ("c", "0.25")):
        post(core, fill(Side.BUY, size, "100", strategy, perp=True))
    chain = post(core, fill(Side.SELL, "0.6", "120", "", perp=True, fee="0.06"))
    assert [core.position(V, PERP, s)[0] for s in "abc"] == [D("0.2"), D("0.1"), D("0.1")]
    # Each realises 20 a unit on its share: 0.3, 0.15, 0.15.
    assert [net(core, chart.realised_pnl(V, PERP, s, "USDT")) for s in "abc"] == [-6, -3, -3]
    assert [net(core, chart.fees_paid(V, PERP, s, "USDT")) for s in "abc"] == [
        D("0.03"),
        D("0.015"),
        D("0.015"),
    ]
    assert {t.links.strategy_id for t in chain.transfers} == {"", "a", "b", "c"}
    assert core.position(V, PERP, "") == (ZERO, ZERO)


def test_an_unattributed_fill_past_the_holders_opens_the_unattributed_book() -> None:
    core = LedgerCore()
    deposit(core, "100000")
    post(core, fill(Side.BUY, "1", "100", "a", perp=True))
    post(core, fill(Side.SELL, "3", "90", "", perp=True))
    assert core.position(V, PERP, "a") == (ZERO, ZERO)
    assert core.position(V, PERP, "") == (D(-2), D(-180))
    post(core, fill(Side.BUY, "1", "80", "", perp=True))  # the only short is the unattributed
    assert core.position(V, PERP, "") == (D(-1), D(-90))
    assert net(core, chart.realised_pnl(V, PERP, "", "USDT")) == -10


def test_an_unattributed_fill_with_no_holder_is_unattributed() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    post(core, fill(Side.BUY, "1", "100", ""))
    assert core.position(V, SPOT, "") == (D(1), D(100))


def test_the_split_rounds_down_and_gives_the_remainder_to_the_largest_never_past_a_holding() -> None:
    holders = {"a": D("0.03"), "b": D("0.02"), "c": D("0.02")}
    assert split(D("0.05"), holders, D("0.01"), caps=holders) == {
        "a": D("0.03"),
        "b": D("0.01"),
        "c": D("0.01"),
    }
    even = {"c": D("0.01"), "a": D("0.01"), "b": D("0.01")}
    assert split(D("0.02"), even, D("0.01"), caps=even) == {"a": D("0.01"), "b": D("0.01")}
    assert split(D(1), {"x": D(1), "y": D(2)}, D(1), caps={"x": D(1), "y": D(2)}) == {"y": D(1)}
    assert quantum_of(D("0.50"), D(3)) == D("0.1") and quantum_of(D(200)) == 1


# --- idempotency, reload, rebuild -------------------------------------------------------------


def test_an_event_posted_twice_is_refused_the_second_time() -> None:
    core = LedgerCore()
    deposit(core, "1000")
    event = fill(Side.BUY, "0.01", "60000")
    post(core, event)
    before = snapshot(core)
    again = core.post(event)
    assert again.chain is None and "posted already" in again.refusal
    assert snapshot(core) == before


def test_a_core_rebuilt_from_balances_posts_the_same_chains() -> None:
    live = LedgerCore()
    deposit(live, "5000")
    events: list[FillEvent | FundingEvent] = [
        fill(Side.BUY, "2", "100", "a", perp=True, leverage="5", fee="0.1"),
        fill(Side.BUY, "1", "105", "b", perp=True, leverage="3", fee="0.1"),
        fill(Side.SELL, "1.5", "110", "", perp=True, fee="0.3"),
        funding("-0.7"),
        fill(Side.SELL, "4", "95", "a", perp=True, leverage="2"),
        fill(Side.BUY, "0.3", "100", "s", fee="0.01", fee_asset="USDT"),
    ]
    for event in events[:3]:
        post(live, event)
    # As the store gives them back: amounts with a scale of their own.
    stored = {
        account_id: dataclasses.replace(
            balance,
            debits_posted=balance.debits_posted.quantize(D("1e-18")),
            credits_posted=balance.credits_posted.quantize(D("1e-18")),
            debits_pending=balance.debits_pending.quantize(D("1e-18")),
            credits_pending=balance.credits_pending.quantize(D("1e-18")),
        )
        for account_id, balance in live.balances.items()
    }
    rebuilt = LedgerCore(live.accounts.values(), stored)
    assert rebuilt.books.pending.keys() == live.books.pending.keys()
    for event in events[3:]:
        assert rebuilt.post(event) == live.post(event)
    assert rebuilt.balances == live.balances


def test_apply_replays_stored_chains_to_the_same_balances() -> None:
    live = LedgerCore()
    first = deposit(live, "1000").chain
    assert first is not None
    chains = [first]
    chains.append(post(live, fill(Side.BUY, "1", "100", perp=True, leverage="4")))
    chains.append(post(live, fill(Side.SELL, "0.5", "104", perp=True, leverage="4")))
    replayed = LedgerCore()
    for chain in chains:
        replayed.apply(chain)
    assert replayed.balances == live.balances
    assert replayed.books.pending.keys() == live.books.pending.keys()
    with pytest.raises(FailedPrecondition, match="posted already"):
        replayed.apply(chains[-1])


def _pair(core: LedgerCore) -> tuple[AccountKey, AccountKey]:
    return chart.cash_margin(V, "USDT"), chart.venue_cash(V, "USDT")


def test_a_pending_transfer_posts_part_and_releases_the_rest() -> None:
    core = LedgerCore()
    deposit(core, "100")
    debit, credit = _pair(core)
    accounts = (Account(debit), core.accounts[credit.id])
    links = Links(event_id="manual")

    def transfer(n: int, amount: str, flags: TransferFlag, pending_id: str = "") -> Transfer:
        return Transfer(
            transfer_id("manual", n), debit.id, credit.id, D(amount), LedgerId.CASH,
            int(TransferCode.MARGIN), "USDT", 1, links, flags, pending_id,
        )  # fmt: skip

    hold = transfer(0, "40", TransferFlag.PENDING)
    core.apply(Chain("manual/0", 1, (hold,), accounts))
    assert core.books.balance(credit).credits_pending == 40
    core.apply(Chain("manual/1", 1, (transfer(1, "25", TransferFlag.POST_PENDING, hold.id),), accounts))
    balance = core.books.balance(credit)
    assert (balance.credits_pending, balance.credits_posted, balance.net_debit) == (ZERO, D(25), D(75))
    with pytest.raises(FailedPrecondition, match="is not open"):
        core.apply(Chain("manual/2", 1, (transfer(2, "0", TransferFlag.VOID_PENDING, hold.id),), accounts))


def test_a_transfer_across_ledgers_unbalances_its_chain_and_is_refused() -> None:
    core = LedgerCore()
    deposit(core, "100")
    cash_key, fees_key = chart.venue_cash(V, "USDT"), chart.fees_control(V, "USDT")
    code, links = int(TransferCode.FEE), Links(event_id="wrong")
    wrong = Transfer(
        transfer_id("wrong", 0), fees_key.id, cash_key.id, D(1), LedgerId.CASH, code, "USDT", 1, links
    )
    chain = Chain("wrong", 1, (wrong,), (core.accounts[cash_key.id], Account(fees_key)))
    assert chain_balances(chain) == {(LedgerId.FEES, "USDT"): 1, (LedgerId.CASH, "USDT"): -1}
    before = snapshot(core)
    with pytest.raises(FailedPrecondition, match="is not in ledger 1 and USDT"):
        core.apply(chain)
    assert snapshot(core) == before


def test_malformed_events_are_refused_where_they_are_made() -> None:
    with pytest.raises(InvalidArgument, match="size"):
        fill(Side.BUY, "0", "100")
    with pytest.raises(InvalidArgument, match="instrument"):
        FillEvent(
            "f",
            V,
            "BTC-1227",
            "BTC",
            "USDT",
            InstrumentKind.FUTURE,
            Side.BUY,
            D(1),
            D(1),
            D(0),
            "",
            1,
            Links(""),
        )
    with pytest.raises(InvalidArgument, match="amount"):
        DepositEvent("d", V, "USDT", D(0), 1)


# --- reports ----------------------------------------------------------------------------------


def test_pnl_per_strategy_from_balances_with_unrealised_at_the_marks() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    deposit(core, "1", asset="BNB")
    post(core, fill(Side.BUY, "2", "100", "a", perp=True, fee="0.2"))
    post(core, fill(Side.SELL, "1", "110", "a", perp=True, fee="0.11"))  # realises 10
    post(core, funding("-0.5", "a"))
    post(core, fill(Side.BUY, "0.1", "50000", "b", fee="0.001", fee_asset="BNB"))
    marks = {(V, PERP): D(120), (V, SPOT): D(49000)}
    lines = pnl(core.accounts, core.balances, marks)
    assert lines[("a", "USDT")] == PnlLine("a", "USDT", D(10), D("-0.31"), D("-0.5"), D(20))
    assert lines[("a", "USDT")].total == D("29.19")
    assert lines[("b", "BNB")] == PnlLine("b", "BNB", fees=D("-0.001"))
    assert lines[("b", "USDT")] == PnlLine("b", "USDT", unrealised=D(-100))
    views = {(p.symbol, p.strategy): p for p in positions(core.accounts, core.balances)}
    assert views[(PERP, "a")].average_price == 100 and views[(PERP, "a")].margin == 100
    assert views[(SPOT, "b")].perpetual is False and views[(SPOT, "b")].quantity == D("0.1")
    assert (
        core.accounts[chart.position_quantity(V, PERP, "a", "BTC", True).id].key.code
        == AccountCode.PERP_QUANTITY
    )


def test_a_margin_balance_without_its_hold_is_refused_not_doubled() -> None:
    live = LedgerCore()
    deposit(live, "1000")
    post(live, fill(Side.BUY, "1", "100", perp=True, leverage="4"))  # holds 25
    quantity = chart.position_quantity(V, PERP, "trend", "BTC", True)
    accounts = [a for a in live.accounts.values() if a.id != quantity.id]  # the books lost an account
    broken = LedgerCore(accounts, {k: b for k, b in live.balances.items() if k != quantity.id})
    refused = broken.post(fill(Side.BUY, "1", "100", perp=True, leverage="4"))
    assert refused.chain is None and "margin hold" in refused.refusal and "is not open" in refused.refusal


def test_ids_are_uuid5_of_what_they_name() -> None:
    from trademesh.core.ledger.engine import model

    key = chart.venue_cash(V, "USDT")
    assert key.id == uuid.uuid5(model._NAMESPACE, f"account/1/101/{V}/USDT/").hex
    cost = chart.position_cost(V, PERP, "trend", "USDT")
    assert cost.id == uuid.uuid5(model._NAMESPACE, f"account/2/203/{V}/USDT/trend/{PERP}").hex
    assert transfer_id("fill/x/1", 3) == uuid.uuid5(model._NAMESPACE, "transfer/fill/x/1/3").hex
