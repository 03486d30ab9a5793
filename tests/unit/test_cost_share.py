"""One rounding rule for a reduction's released cost (trademesh/core/domain/cost_share.py): the sim's
matching engine (Accounts) and the ledger's core realise the same PnL and keep the same cost
for the same fills, to the last digit, where the average entry does not terminate (issue 60's
defect: the sim realised against an entry kept to 18 places, the ledger released to 1e-12)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from tests.unit.test_ledger_core import PERP, V, deposit, fill, net, post
from trademesh.core.domain.cost_share import quantum_of, released_cost
from trademesh.core.domain.matching.accounts import EXACT, Accounts
from trademesh.core.domain.model import Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.core import LedgerCore

D = Decimal

# Buys of 0.003 at 100, 100.01, 100.02 (the entry 100.01) would terminate; these do not:
# 1 x 100 + 1 x 100 + 1 x 101 is an entry of 100.333..., then reductions of 1 and 2 (and the
# same in contracts of 0.01 BTC, and a short).
CASES = [
    ("1", "buy 1 100, buy 1 100, buy 1 101, sell 1 102, sell 2 99.5"),
    ("0.01", "buy 3 30000, buy 4 30001.7, sell 5 30010, sell 2 29990.3"),
    ("1", "sell 0.7 64999.9, sell 0.2 65003.3, buy 0.4 65100, buy 0.6 65050"),
    ("1", "buy 1 100, buy 2 101, sell 4 103, buy 1 102"),  # flips
]


def test_the_released_cost_is_the_share_rounded_half_even_to_1e12_or_finer() -> None:
    assert released_cost(D(301), D(1), D(3)) == D("100.333333333333")
    assert released_cost(D(302), D(1), D(3)) == D("100.666666666667")
    assert released_cost(D(301), D(3), D(3)) == D(301)  # closed whole: all of it
    # a finer step among the amounts keeps its digits: 1e-15 of the cost
    assert released_cost(D("0.000000000000003"), D(1), D(3)) == D("0.000000000000001")
    assert quantum_of(D("0.50"), D(3)) == D("0.1")


@pytest.mark.parametrize(("contract_size", "fills"), CASES)
def test_the_sim_and_the_ledger_realise_the_same_to_the_last_digit(contract_size: str, fills: str) -> None:
    accounts = Accounts({"USDT": D(10**7)})
    ledger = LedgerCore()
    deposit(ledger, "10000000")
    multiplier = D(contract_size)
    for side, size, price in (f.split() for f in fills.split(", ")):
        with localcontext(EXACT):
            accounts.record_fill(PERP, Side(side), D(price), D(size), multiplier)
        post(ledger, fill(Side(side), size, price, perp=True, contract_size=contract_size))
        held = accounts.held(PERP)
        assert held is not None
        quantity, cost = ledger.position(V, PERP, "trend")
        assert quantity == held.size * multiplier
        assert abs(cost) == held.cost, (side, size, price)
        # the realised PnL account is credited with a gain (net debit < 0)
        assert -net(ledger, chart.realised_pnl(V, PERP, "trend", "USDT")) == held.realized, (
            side,
            size,
            price,
        )
