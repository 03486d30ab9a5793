"""The ledger's margin under random sequences (hypothesis): perpetual fills, linear and inverse,
of two strategies, at leverages that change between fills, some of them liquidations with a
fee. After every posting the margin each position holds in the books is, exactly, what the
sim's matching engine holds for the same fills (its own arithmetic:
trademesh.core.domain.matching.margin.initial_margin and exact_quotient: an opening adds notional /
leverage, a reduce releases its share of the margin, a leverage set re-margins to |cost| /
leverage); the cash ledger's hold is the margin ledger's; every chain balances. At the end the
venue's cash less the deposits is the books' PnL, and the liquidation fees are the liquidation
fills' fees."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from trademesh.core.domain.inverse import coin_value
from trademesh.core.domain.matching.accounts import EXACT, exact_quotient
from trademesh.core.domain.matching.margin import initial_margin as sim_initial_margin
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.books import chain_balances
from trademesh.core.ledger.engine.chart import AccountCode
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent
from trademesh.core.ledger.engine.model import Links
from trademesh.core.ledger.engine.reports import pnl

D = Decimal
NONE = D(0)
ONE = D(1)
V = "sim"
EVENTS = 300
LEVERAGES = (D(1), D(3), D(5), D(10), D(20), D("12.5"))


@dataclass(frozen=True)
class Market:
    symbol: str
    base: str
    quote: str
    contract_size: Decimal  # base units a contract; an inverse one's face value in USD
    inverse: bool

    @property
    def settle(self) -> str:
        return self.base if self.inverse else self.quote


MARKETS = (
    Market("BTC/USDT:USDT", "BTC", "USDT", D("0.001"), False),
    Market("BTC/USD:BTC", "BTC", "USD", D(10), True),
)
OPENING = {"USDT": D(10_000_000), "BTC": D(1_000)}


@dataclass
class Held:
    """The sim's margin of one position, kept by its own rules."""

    contracts: Decimal = NONE
    margin: Decimal = NONE
    leverage: Decimal = ONE


@dataclass
class Run:
    core: LedgerCore = field(default_factory=LedgerCore)
    held: dict[tuple[str, str], Held] = field(default_factory=dict)
    liquidation_fees: dict[str, Decimal] = field(default_factory=dict)
    n: int = 0

    def fill(self, market: Market, strategy: str, side: Side, contracts: Decimal, price: Decimal,
             leverage: Decimal, fee: Decimal, liquidation: bool) -> None:  # fmt: skip
        self.n += 1
        event = FillEvent(
            event_id=f"fill/{V}/{self.n}", venue=V, symbol=market.symbol, base=market.base,
            quote=market.quote, instrument=InstrumentKind.PERPETUAL, side=side, price=price,
            size=contracts, fee=fee, fee_asset=market.settle, ts_ns=self.n,
            links=Links(event_id="", fill_id=str(self.n), strategy_id=strategy),
            contract_size=market.contract_size, leverage=leverage, inverse=market.inverse,
            liquidation=liquidation,
        )  # fmt: skip
        cost_before = self.core.position(V, market.symbol, strategy)[1]
        posting = self.core.post(event)
        assert posting.chain is not None, posting.refusal
        assert not any(chain_balances(posting.chain).values())
        self._venue(market, strategy, side, contracts, price, leverage, cost_before)
        if liquidation:
            self.liquidation_fees[market.settle] = self.liquidation_fees.get(market.settle, D(0)) + fee

    def _venue(self, market: Market, strategy: str, side: Side, contracts: Decimal, price: Decimal,
               leverage: Decimal, cost_before: Decimal) -> None:  # fmt: skip
        """The sim's margin after the fill (margin_account.MarginAccount's set and after_fill)."""
        held = self.held.setdefault((strategy, market.symbol), Held())
        with localcontext(EXACT):
            if leverage != held.leverage and held.contracts:  # SetLeverage on an open position
                held.margin = sim_initial_margin(cost_before, leverage)
            held.leverage = leverage
            before = held.contracts
            closing = D(0)
            if before and (before > 0) != (side is Side.BUY):
                closing = min(contracts, abs(before))
                share = (
                    held.margin
                    if closing == abs(before)
                    else exact_quotient(held.margin * closing, abs(before))
                )
                held.margin -= share
            opened = contracts - closing
            if opened:
                worth = (
                    coin_value(opened * market.contract_size, price)
                    if market.inverse
                    else price * opened * market.contract_size
                )
                held.margin += sim_initial_margin(worth, leverage)
            held.contracts = before + side.sign * contracts

    def check(self) -> None:
        for (strategy, symbol), held in self.held.items():
            market = next(m for m in MARKETS if m.symbol == symbol)
            assert self.core.margin(V, symbol, strategy, market.settle) == held.margin, (strategy, symbol)
        for asset in {m.settle for m in MARKETS}:
            with localcontext() as context:
                context.prec = 60  # the core's: a sum of amounts at their finest steps passes 28 digits
                locked = self._locked(asset)
            assert self.core.books.balance(chart.cash_margin(V, asset)).debits_pending == locked

    def _locked(self, asset: str) -> Decimal:
        return sum(
            (
                self.core.books.balance(a.key).debits_pending
                for a in self.core.accounts.values()
                if a.key.code == AccountCode.MARGIN_LOCKED and a.key.asset == asset
            ),
            D(0),
        )


def _events(run: Run, rng: random.Random) -> None:
    prices = {m.symbol: D(30000) for m in MARKETS}
    leverage = {m.symbol: D(10) for m in MARKETS}
    for _ in range(EVENTS):
        market = rng.choice(MARKETS)
        strategy = rng.choice(("a", "b"))
        step = D(rng.randint(-300, 300)) / 2  # 0.5 ticks
        prices[market.symbol] = max(D(1000), prices[market.symbol] + step)
        price = prices[market.symbol]
        if rng.random() < 0.1:
            leverage[market.symbol] = rng.choice(LEVERAGES)
        held = run.held.get((strategy, market.symbol), Held()).contracts
        liquidation = bool(held) and rng.random() < 0.1
        if liquidation:  # the venue closes it all, or a part
            side = Side.SELL if held > 0 else Side.BUY
            contracts = abs(held) if rng.random() < 0.7 else max(D(1), abs(held) // 2)
        else:
            side = rng.choice((Side.BUY, Side.SELL))
            contracts = D(rng.randint(1, 400))
        rate = D("0.005") if liquidation else D("0.0004")
        notional = (
            coin_value(contracts * market.contract_size, price)
            if market.inverse
            else contracts * market.contract_size * price
        )
        fee = (notional * rate).quantize(D("1e-12"))
        run.fill(market, strategy, side, contracts, price, leverage[market.symbol], fee, liquidation)
        run.check()


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_books_margin_is_the_venues_through_random_fills_and_liquidations(seed: int) -> None:
    run = Run()
    for asset, amount in OPENING.items():
        assert run.core.post(DepositEvent(f"deposit/{asset}", V, asset, amount, 0)).posted
    _events(run, random.Random(seed))
    lines = pnl(run.core.accounts, run.core.balances)
    for asset, opening in OPENING.items():
        cash = run.core.books.balance(chart.venue_cash(V, asset)).net_debit
        assert sum((line.total for (_, a), line in lines.items() if a == asset), D(0)) == cash - opening
    booked: dict[str, Decimal] = {}
    for account in run.core.accounts.values():
        if account.key.code == AccountCode.LIQUIDATION_FEES:
            booked[account.key.asset] = (
                booked.get(account.key.asset, D(0)) + run.core.books.balance(account.key).net_debit
            )
    assert booked == {a: f for a, f in run.liquidation_fees.items() if f}
