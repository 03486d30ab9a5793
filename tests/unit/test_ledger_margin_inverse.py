"""An inverse perpetual's margin and liquidation in the ledger (docs/ledger.md, "Margin and
liquidation"): Deribit's BTC-PERPETUAL (1 USD contracts, settled in BTC), its margin the coin
its face was worth at entry / leverage, held from the BTC cash in the margin ledger, released
as the position shrinks, and a liquidation at the bankruptcy price (on the tick) booking the
loss in BTC, the liquidation fee in its own account and releasing the margin. Worked by hand;
the venue's BTC total and position margin as the venue reckons them."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.books import chain_balances, describe
from trademesh.core.ledger.engine.chart import AccountCode, TransferCode
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent
from trademesh.core.ledger.engine.model import Chain, Links, TransferFlag
from trademesh.core.ledger.engine.reports import pnl

D = Decimal
V, SYMBOL = "deribit", "BTC/USD:BTC"
_seq = iter(range(1, 10**9))


def fill(
    side: Side,
    usd: str,
    price: str,
    fee: str,
    *,
    strategy: str = "trend",
    leverage: str = "10",
    liquidation: bool = False,
) -> FillEvent:
    """A fill of `usd` contracts of 1 USD at `price`, its fee in BTC."""
    n = next(_seq)
    return FillEvent(
        event_id=f"fill/{V}/{n}", venue=V, symbol=SYMBOL, base="BTC", quote="USD",
        instrument=InstrumentKind.PERPETUAL, side=side, price=D(price), size=D(usd),
        fee=D(fee), fee_asset="BTC", ts_ns=n,
        links=Links(event_id="", fill_id=str(n), strategy_id=strategy), contract_size=D(1),
        leverage=D(leverage), inverse=True, liquidation=liquidation,
    )  # fmt: skip


def post(core: LedgerCore, event: FillEvent | DepositEvent) -> Chain:
    posting = core.post(event)
    assert posting.refusal == "" and posting.chain is not None, posting.refusal
    assert not any(chain_balances(posting.chain).values())
    return posting.chain


def rows(chain: Chain) -> list[tuple[str, str, str, str, Decimal, str]]:
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


def name(account: str, asset: str = "BTC") -> str:
    keys = {
        "quantity": chart.position_quantity(V, SYMBOL, "trend", "USD", perpetual=True),
        "cost": chart.position_cost(V, SYMBOL, "trend", asset),
        "control": chart.position_control(V, SYMBOL, asset),
        "realised": chart.realised_pnl(V, SYMBOL, "trend", asset),
        "realised_control": chart.realised_control(V, asset),
        "cash": chart.venue_cash(V, asset),
        "market": chart.market(V, asset),
        "cash_fees": chart.cash_fees(V, asset),
        "fees": chart.fees_paid(V, SYMBOL, "trend", asset),
        "liquidation_fees": chart.liquidation_fees(V, SYMBOL, "trend", asset),
        "fees_control": chart.fees_control(V, asset),
        "cash_margin": chart.cash_margin(V, asset),
        "locked": chart.margin_locked(V, SYMBOL, "trend", asset),
        "margin_control": chart.margin_control(V, asset),
    }
    return describe(keys[account])


def venue_view(core: LedgerCore) -> tuple[Decimal, Decimal]:
    """(the BTC total, the BTC position margin) as the ledger has them; the cash ledger's hold
    and the margin ledger's accounts agree."""
    locked = sum(
        (
            core.books.balance(a.key).debits_pending
            for a in core.accounts.values()
            if a.key.code == AccountCode.MARGIN_LOCKED and a.key.asset == "BTC"
        ),
        D(0),
    )
    assert core.books.balance(chart.cash_margin(V, "BTC")).debits_pending == locked
    return core.books.balance(chart.venue_cash(V, "BTC")).net_debit, locked


def test_an_inverse_long_opens_shrinks_and_is_liquidated() -> None:
    """0.1 BTC; long 30,000 USD at 50,000 at 10x; 10,000 sold at 55,000; the other 20,000
    liquidated at 45,455: the bankruptcy price 20000 / 0.44 = 45,454.54... on the 0.5 tick,
    toward the mark (the loss never more than the margin)."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "BTC", D("0.1"), 0))
    # Fully funded, the 0.6 BTC the face is worth is more than the 0.1 held: refused.
    assert core.post(fill(Side.BUY, "30000", "50000", "0.0003", leverage="1")).chain is None

    # Open at 10x: cost 30000 / 50000 = 0.6 BTC, margin 0.06, fee 0.05% = 0.0003.
    opened = post(core, fill(Side.BUY, "30000", "50000", "0.0003"))
    assert rows(opened)[-2:] == [
        ("BTC", name("cash_margin"), name("cash"), "margin", D("0.06"), "pending"),
        ("BTC", name("locked"), name("margin_control"), "margin", D("0.06"), "pending"),
    ]
    assert venue_view(core) == (D("0.0997"), D("0.06"))

    # Partial close: 10,000 at 55,000. Released 0.6 / 3 = 0.2; worth 10000 / 55000 =
    # 0.181818181818 now: realised 0.018181818182; fee 0.000090909091; the margin kept
    # 0.4 / 10 = 0.04.
    post(core, fill(Side.SELL, "10000", "55000", "0.000090909091"))
    assert core.position(V, SYMBOL, "trend") == (D(20000), D("0.4"))
    assert venue_view(core) == (D("0.117790909091"), D("0.04"))

    # Liquidated by the venue's own order: 20,000 at 45,455, worth 0.439995600044 BTC: the loss
    # 0.4 - 0.439995600044 = -0.039995600044; the liquidation fee 0.75% of it, 0.00329997.
    liquidated = post(core, fill(Side.SELL, "20000", "45455", "0.00329997", strategy="", liquidation=True))
    assert rows(liquidated) == [
        ("BTC", name("cash_margin"), name("cash"), "margin", D("0.04"), "void_pending"),
        ("BTC", name("locked"), name("margin_control"), "margin", D("0.04"), "void_pending"),
        ("USD", describe(chart.position_control(V, SYMBOL, "USD")), name("quantity"), "trade", D(20000), ""),
        ("BTC", name("control"), name("cost"), "cost_released", D("0.4"), ""),
        ("BTC", name("realised"), name("realised_control"), "realised", D("0.039995600044"), ""),
        ("BTC", name("market"), name("cash"), "realised", D("0.039995600044"), ""),
        ("BTC", name("cash_fees"), name("cash"), "liquidation_fee", D("0.00329997"), ""),
        ("BTC", name("liquidation_fees"), name("fees_control"), "liquidation_fee", D("0.00329997"), ""),
    ]
    # 0.117790909091 - 0.039995600044 - 0.00329997 = 0.074495339047 BTC, no margin held.
    assert venue_view(core) == (D("0.074495339047"), D(0))
    line = pnl(core.accounts, core.balances)[("trend", "BTC")]
    assert line.realised == D("0.018181818182") - D("0.039995600044")
    assert line.fees == -(D("0.0003") + D("0.000090909091") + D("0.00329997"))
    assert line.total == D("0.074495339047") - D("0.1")


def test_an_inverse_short_is_liquidated_at_its_bankruptcy_price() -> None:
    """Short 10,000 USD at 50,000 at 10x: cost -0.2 BTC, margin 0.02. Its bankruptcy price
    10000 / 0.18 = 55,555.55... on the tick toward the mark, 55,555.5: bought back worth
    0.18000018 BTC, the loss -0.2 + 0.18000018 = -0.01999982, the fee 0.00135 BTC."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "BTC", D("0.05"), 0))
    post(core, fill(Side.SELL, "10000", "50000", "0"))
    assert venue_view(core) == (D("0.05"), D("0.02"))
    post(core, fill(Side.BUY, "10000", "55555.5", "0.00135", strategy="", liquidation=True))
    assert core.position(V, SYMBOL, "trend") == (D(0), D(0))
    assert venue_view(core) == (D("0.05") - D("0.01999982") - D("0.00135"), D(0))
    liquidation_fees = core.books.balance(chart.liquidation_fees(V, SYMBOL, "trend", "BTC")).net_debit
    assert liquidation_fees == D("0.00135")
    assert core.books.balance(chart.fees_paid(V, SYMBOL, "trend", "BTC")).net_debit == 0


def test_a_margin_is_kept_to_1e_18_as_the_sim_keeps_it() -> None:
    """A margin is a hold, kept exact where |cost| / leverage ends within 1e-18 (the coin worth
    0.439995600044 at 10x holds 0.0439995600044, not 0.043999560004), else rounded half-even to
    1e-18 (0.6 BTC at 7x: 0.085714285714285714)."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "BTC", D(1), 0))
    post(core, fill(Side.BUY, "20000", "45455", "0"))
    assert venue_view(core)[1] == D("0.0439995600044")
    post(core, fill(Side.SELL, "20000", "45455", "0"))
    post(core, fill(Side.BUY, "30000", "50000", "0", leverage="7"))
    assert venue_view(core)[1] == D("0.085714285714285714")


def test_a_reduce_releases_the_share_of_the_margin_it_closes_as_the_venue_does() -> None:
    """The venue releases reduced / held of the margin held (exact), not the rounded cost left /
    leverage: 6,000 USD bought at 28,662.5 cost 0.209332751853 BTC and hold 0.01046663759265 at
    20x; 1,500 sold release a quarter, 0.0078499781944875 held, where the cost left,
    0.15699956389 (its quarter rounded to 1e-12), / 20 would be 0.0078499781945."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "BTC", D(1), 0))
    post(core, fill(Side.BUY, "6000", "28662.5", "0", leverage="20"))
    assert venue_view(core)[1] == D("0.01046663759265")
    post(core, fill(Side.SELL, "1500", "28000", "0", leverage="20"))
    assert core.position(V, SYMBOL, "trend") == (D(4500), D("0.15699956389"))
    assert venue_view(core)[1] == D("0.0078499781944875")


def test_a_leverage_set_while_the_position_is_open_re_margins_it_with_the_next_fill() -> None:
    """The venue re-margins an open position when its leverage is set (|cost| / new leverage);
    the ledger sees the new leverage with the next fill: 0.6 BTC of cost at 10x holds 0.06; a
    reduce of a third at 20x (set at the venue meanwhile) holds 0.6 / 20 x 2/3 = 0.02."""
    core = LedgerCore()
    post(core, DepositEvent("deposit/1", V, "BTC", D(1), 0))
    post(core, fill(Side.BUY, "30000", "50000", "0"))
    post(core, fill(Side.SELL, "10000", "55000", "0", leverage="20"))
    assert venue_view(core)[1] == D("0.02")
