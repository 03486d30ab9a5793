"""A perpetual's recorded funding rates stand in for its configured rate at the funding times
they cover (FundingTerms.rate_at: the nearest recorded time within half an interval), and the
sim exchange pays them (a backtest's replay_funding_rates)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.unit.test_sim_funding import PERP, Clock, make, market
from trademesh.core.domain.matching.funding import FundingTerms
from trademesh.core.domain.model import Side
from trademesh.core.platform.errors import NotFound

D = Decimal
S = 1_000_000_000
H8 = 28_800 * S


def test_a_recorded_rate_covers_the_funding_time_nearest_it_within_half_an_interval() -> None:
    terms = FundingTerms(D("0.0001"), 28_800, ((H8 + 123_000_000, D("0.0003")), (3 * H8, D("-0.0002"))))
    assert terms.rate_at(H8) == (D("0.0003"), True)  # recorded 123 ms after the funding time
    assert terms.rate_at(2 * H8) == (D("0.0001"), False)  # none near: the configured rate
    assert terms.rate_at(3 * H8) == (D("-0.0002"), True)
    assert terms.rate_at(3 * H8 + H8 // 2) == (D("0.0001"), False)  # half an interval off: not its own
    assert FundingTerms(D("0.0005")).rate_at(H8) == (D("0.0005"), False)


def test_the_exchange_pays_the_recorded_rate_where_there_is_one(tmp_path: Path) -> None:
    clock = Clock(5 * S)
    exchange = make(tmp_path, clock)  # funding every 10 s at 0.0001, the book's mid 100
    exchange.place(market(Side.BUY, "2"))
    exchange.replay_funding_rates(PERP, [(10 * S, D("0.002"))])
    clock.now_ns = 20 * S
    first, second = exchange.settle_funding()
    assert (first.ts_ns, first.rate, first.amount) == (10 * S, D("0.002"), -(D(2) * D(100) * D("0.002")))
    assert (second.ts_ns, second.rate, second.amount) == (20 * S, D("0.0001"), -(D(2) * D(100) * D("0.0001")))
    assert exchange.funding_rate_recorded(PERP, 10 * S) and not exchange.funding_rate_recorded(PERP, 20 * S)
    with pytest.raises(NotFound, match="unknown symbol"):
        exchange.replay_funding_rates("ETH/USDT:USDT", [])
