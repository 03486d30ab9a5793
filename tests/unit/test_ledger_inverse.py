"""The ledger's books of an inverse perpetual (Deribit's BTC-PERPETUAL: 1 USD contracts, settled
in BTC), worked by hand as docs/ledger.md's "Worked example: an inverse perpetual" shows them:
the position kept in USD, its cost, realised PnL, fees, funding and margin in BTC, the PnL
exactly contracts x value x (1/entry - 1/exit), the books balanced per ledger and asset and
recomputed from their transfers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.domain.inverse import coin_fee, coin_pnl
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.contracts import Contract
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.books import chain_balances, describe
from trademesh.core.ledger.engine.chart import TransferCode
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent, FundingEvent
from trademesh.core.ledger.engine.model import Chain, Links, TransferFlag
from trademesh.core.ledger.engine.reports import pnl, positions
from trademesh.core.platform.errors import InvalidArgument

D = Decimal
V, SYMBOL = "deribit", "BTC/USD:BTC"
TAKER = D("0.0005")  # Deribit's perpetual taker fee, of the coin value
_seq = iter(range(1, 10**9))


def fill(side: Side, usd: str, price: str, strategy: str = "trend", *, leverage: str = "10") -> FillEvent:
    """A fill of `usd` contracts of 1 USD at `price`, paying the taker fee in BTC."""
    n = next(_seq)
    return FillEvent(
        event_id=f"fill/{V}/{n}", venue=V, symbol=SYMBOL, base="BTC", quote="USD",
        instrument=InstrumentKind.PERPETUAL, side=side, price=D(price), size=D(usd),
        fee=coin_fee(D(usd), D(price), TAKER), fee_asset="BTC", ts_ns=n,
        links=Links(event_id="", fill_id=str(n), strategy_id=strategy), contract_size=D(1),
        leverage=D(leverage), inverse=True,
    )  # fmt: skip


def post(core: LedgerCore, event: FillEvent | FundingEvent | DepositEvent, kept: list[Chain]) -> Chain:
    posting = core.post(event)
    assert posting.refusal == "" and posting.chain is not None
    assert not any(chain_balances(posting.chain).values())
    kept.append(posting.chain)
    return posting.chain


def rows(chain: Chain) -> list[tuple[str, str, str, str, Decimal, str]]:
    """(asset, debit, credit, code, amount, flag) of each transfer, as docs/ledger.md's tables."""
    keys = {account.id: account.key for account in chain.accounts}
    flags = {TransferFlag.PENDING: "pending", TransferFlag.VOID_PENDING: "void_pending"}
    return [
        (
            t.asset,
            describe(keys[t.debit_account_id]),
            describe(keys[t.credit_account_id]),
            TransferCode(t.code).name.lower(),
            t.amount,
            flags.get(t.flags, ""),
        )
        for t in chain.transfers
    ]


def qty(strategy: str = "trend") -> str:
    return describe(chart.position_quantity(V, SYMBOL, strategy, "USD", perpetual=True))


def account(name: str, asset: str = "BTC") -> str:
    keys = {
        "cost": chart.position_cost(V, SYMBOL, "trend", asset),
        "control": chart.position_control(V, SYMBOL, asset),
        "realised": chart.realised_pnl(V, SYMBOL, "trend", asset),
        "realised_control": chart.realised_control(V, asset),
        "cash": chart.venue_cash(V, asset),
        "market": chart.market(V, asset),
        "cash_fees": chart.cash_fees(V, asset),
        "fees": chart.fees_paid(V, SYMBOL, "trend", asset),
        "fees_control": chart.fees_control(V, asset),
        "cash_margin": chart.cash_margin(V, asset),
        "locked": chart.margin_locked(V, SYMBOL, "trend", asset),
        "margin_control": chart.margin_control(V, asset),
        "cash_funding": chart.cash_funding(V, asset),
        "funding": chart.funding_pnl(V, SYMBOL, "trend", asset),
        "funding_control": chart.funding_control(V, asset),
    }
    return describe(keys[name])


def test_the_worked_example_of_an_inverse_perpetual() -> None:
    core, kept = LedgerCore(), list[Chain]()
    post(core, DepositEvent("deposit/1", V, "BTC", D(1), 0), kept)
    # Open: buy 30,000 USD at 50,000, 10x. Cost 30000 / 50000 = 0.6 BTC, margin 0.06 BTC, fee
    # 0.05% of 0.6 = 0.0003 BTC.
    opened = post(core, fill(Side.BUY, "30000", "50000"), kept)
    assert rows(opened) == [
        ("USD", qty(), account("control", "USD"), "trade", D(30000), ""),
        ("BTC", account("cost"), account("control"), "trade", D("0.6"), ""),
        ("BTC", account("cash_fees"), account("cash"), "fee", D("0.0003"), ""),
        ("BTC", account("fees"), account("fees_control"), "fee", D("0.0003"), ""),
        ("BTC", account("cash_margin"), account("cash"), "margin", D("0.06"), "pending"),
        ("BTC", account("locked"), account("margin_control"), "margin", D("0.06"), "pending"),
    ]
    # Increase: buy 20,000 at 40,000: cost 0.5, so 50,000 USD at a cost of 1.1 BTC (an average
    # entry of 50000 / 1.1 = 45,454.54...); margin 0.06 + 0.05 = 0.11.
    increased = post(core, fill(Side.BUY, "20000", "40000"), kept)
    assert [r[3:] for r in rows(increased)] == [
        ("margin", D("0.06"), "void_pending"), ("margin", D("0.06"), "void_pending"),
        ("trade", D(20000), ""), ("trade", D("0.5"), ""),
        ("fee", D("0.00025"), ""), ("fee", D("0.00025"), ""),
        ("margin", D("0.11"), "pending"), ("margin", D("0.11"), "pending"),
    ]  # fmt: skip
    assert core.position(V, SYMBOL, "trend") == (D(50000), D("1.1"))
    # Funding paid: 0.0001 BTC.
    funded = post(
        core, FundingEvent("funding/1", V, SYMBOL, "BTC", D("-0.0001"), 3, Links(event_id="")), kept
    )
    assert rows(funded) == [
        ("BTC", account("cash_funding"), account("cash"), "funding", D("0.0001"), ""),
        ("BTC", account("funding"), account("funding_control"), "funding", D("0.0001"), ""),
    ]
    # Reduce: sell 25,000 at 55,000. Cost released 1.1 x 25000 / 50000 = 0.55; the face is
    # worth 25000 / 55000 = 0.454545454545 BTC now (rounded to 1e-12): realised 0.095454545455.
    reduced = post(core, fill(Side.SELL, "25000", "55000"), kept)
    assert rows(reduced) == [
        ("BTC", account("cash_margin"), account("cash"), "margin", D("0.11"), "void_pending"),
        ("BTC", account("locked"), account("margin_control"), "margin", D("0.11"), "void_pending"),
        ("USD", account("control", "USD"), qty(), "trade", D(25000), ""),
        ("BTC", account("control"), account("cost"), "cost_released", D("0.55"), ""),
        ("BTC", account("realised_control"), account("realised"), "realised", D("0.095454545455"), ""),
        ("BTC", account("cash"), account("market"), "realised", D("0.095454545455"), ""),
        ("BTC", account("cash_fees"), account("cash"), "fee", D("0.000227272727"), ""),
        ("BTC", account("fees"), account("fees_control"), "fee", D("0.000227272727"), ""),
        ("BTC", account("cash_margin"), account("cash"), "margin", D("0.055"), "pending"),
        ("BTC", account("locked"), account("margin_control"), "margin", D("0.055"), "pending"),
    ]
    # 25,000 x (1/entry - 1/55000) at the average entry 50000 / 1.1: the same, to 1e-12
    assert coin_pnl(D(25000), D(50000) / D("1.1"), D(55000)) == D("0.095454545455")
    # Close: sell 25,000 at 50,000: releases 0.55, worth 0.5 now: realised 0.05; no margin held.
    closed = post(core, fill(Side.SELL, "25000", "50000"), kept)
    assert [r[3:] for r in rows(closed)] == [
        ("margin", D("0.055"), "void_pending"), ("margin", D("0.055"), "void_pending"),
        ("trade", D(25000), ""), ("cost_released", D("0.55"), ""),
        ("realised", D("0.05"), ""), ("realised", D("0.05"), ""),
        ("fee", D("0.00025"), ""), ("fee", D("0.00025"), ""),
    ]  # fmt: skip
    assert core.position(V, SYMBOL, "trend") == (D(0), D(0))
    fees = D("0.0003") + D("0.00025") + D("0.000227272727") + D("0.00025")
    realised = D("0.095454545455") + D("0.05")
    assert (realised, fees) == (D("0.145454545455"), D("0.001027272727"))
    assert core.books.balance(chart.venue_cash(V, "BTC")).net_debit == D("1.144327272728")
    assert core.books.balance(chart.venue_cash(V, "BTC")).credits_pending == 0
    (line,) = pnl(core.accounts, core.balances).values()
    assert (line.asset, line.realised, line.fees, line.funding) == ("BTC", realised, -fees, D("-0.0001"))
    # Every balance recomputed from the transfers: a core fed the stored chains holds the same.
    replayed = LedgerCore()
    for chain in kept:
        replayed.apply(chain)
    assert replayed.balances == core.balances


def test_a_short_gains_the_coin_a_falling_price_frees() -> None:
    core, kept = LedgerCore(), list[Chain]()
    post(core, DepositEvent("deposit/2", V, "BTC", D(1), 0), kept)
    post(core, fill(Side.SELL, "10000", "50000", leverage="1"), kept)  # cost -0.2 BTC, margin 0.2
    assert core.position(V, SYMBOL, "trend") == (D(-10000), D("-0.2"))
    assert core.margin(V, SYMBOL, "trend", "BTC") == D("0.2")
    bought = post(core, fill(Side.BUY, "10000", "40000", leverage="1"), kept)
    # 10,000 x (1/40000 - 1/50000) = 0.25 - 0.2 = 0.05 BTC
    assert ("BTC", account("realised_control"), account("realised"), "realised", D("0.05"), "") in rows(
        bought
    )
    assert core.books.balance(chart.realised_pnl(V, SYMBOL, "trend", "BTC")).net_debit == D("-0.05")
    assert coin_pnl(D(-10000), D(50000), D(40000)) == D("0.05")


def test_a_flip_opens_the_other_side_at_the_fills_price() -> None:
    core, kept = LedgerCore(), list[Chain]()
    post(core, DepositEvent("deposit/3", V, "BTC", D(1), 0), kept)
    post(core, fill(Side.BUY, "1000", "50000", leverage="2"), kept)  # cost 0.02, margin 0.01
    post(core, fill(Side.SELL, "3000", "40000", leverage="2"), kept)
    # closes the long: 0.02 - 1000 / 40000 = -0.005; opens 2,000 short at 40,000: cost -0.05,
    # margin 0.05 / 2
    assert core.position(V, SYMBOL, "trend") == (D(-2000), D("-0.05"))
    assert core.margin(V, SYMBOL, "trend", "BTC") == D("0.025")
    assert core.books.balance(chart.realised_pnl(V, SYMBOL, "trend", "BTC")).net_debit == D("0.005")


def test_positions_value_an_inverse_one_in_the_coin_at_the_mark() -> None:
    core, kept = LedgerCore(), list[Chain]()
    post(core, DepositEvent("deposit/4", V, "BTC", D(1), 0), kept)
    post(core, fill(Side.BUY, "30000", "50000", leverage="1"), kept)
    (view,) = positions(core.accounts, core.balances)
    assert (view.base, view.quote, view.inverse) == ("USD", "BTC", True)
    assert (view.quantity, view.cost, view.average_price) == (D(30000), D("0.6"), D(50000))
    # at 60,000: 30000 x (1/50000 - 1/60000) = 0.1 BTC
    assert view.unrealised(D(60000)) == D("0.1") == coin_pnl(D(30000), D(50000), D(60000))
    line = pnl(core.accounts, core.balances, {(V, SYMBOL): D(60000)})[("trend", "BTC")]
    assert line.unrealised == D("0.1")


def test_margin_the_coin_cannot_cover_is_refused_whole() -> None:
    core, kept = LedgerCore(), list[Chain]()
    post(core, DepositEvent("deposit/5", V, "BTC", D("0.1"), 0), kept)
    refused = core.post(fill(Side.BUY, "10000", "50000", leverage="1"))  # 0.2 BTC of margin
    assert refused.chain is None and "venue_cash deribit/BTC" in refused.refusal


def test_only_a_perpetual_is_booked_inverse() -> None:
    event = fill(Side.BUY, "10", "50000")
    with pytest.raises(InvalidArgument, match="inverse"):
        FillEvent(**{**event.__dict__, "instrument": InstrumentKind.SPOT})


def test_the_contract_of_an_inverse_instrument_is_its_face_value() -> None:
    from trademesh.common.v1 import common_pb2 as common

    listed = common.Instrument(
        symbol=SYMBOL, kind=common.INSTRUMENT_KIND_PERPETUAL, base_asset="BTC", quote_asset="USD",
        settle_asset="BTC", contract_size="0", contract_value="100", contract_value_asset="USD",
    )  # fmt: skip
    assert Contract.from_instrument(listed) == Contract(
        InstrumentKind.PERPETUAL, "BTC", "USD", "BTC", D(100), inverse=True
    )
    assert Contract.from_symbol(SYMBOL).inverse and not Contract.from_symbol("BTC/USDT:USDT").inverse


def test_okx_contracts_of_100_usd_book_their_face_value() -> None:
    # OKX's BTC-USD-SWAP: 3 contracts of 100 USD at 50,000 are 300 USD, 0.006 BTC of cost
    core, kept = LedgerCore(), list[Chain]()
    post(core, DepositEvent("deposit/6", "okx-swap", "BTC", D(1), 0), kept)
    n = next(_seq)
    event = FillEvent(
        event_id=f"fill/okx-swap/{n}", venue="okx-swap", symbol=SYMBOL, base="BTC", quote="USD",
        instrument=InstrumentKind.PERPETUAL, side=Side.BUY, price=D(50000), size=D(3), fee=D("0.000003"),
        fee_asset="BTC", ts_ns=n, links=Links(event_id="", strategy_id="trend"), contract_size=D(100),
        inverse=True,
    )  # fmt: skip
    post(core, event, kept)
    assert core.position("okx-swap", SYMBOL, "trend") == (D(300), D("0.006"))
    assert core.margin("okx-swap", SYMBOL, "trend", "BTC") == D("0.006")  # leverage 1
