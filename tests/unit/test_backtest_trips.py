"""Round trips from fills, worked by hand (trademesh.core.backtest.trips)."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.backtest.results import FillRecord
from trademesh.core.backtest.trips import attributed, round_trips

D = Decimal


def fill(ts: int, side: str, size: str, price: str, fee: str, strategy: str = "") -> FillRecord:
    return FillRecord(ts, strategy, "sim", "BTC/USDT", side, D(price), D(size), D(fee))


def test_a_long_built_in_two_fills_and_closed_by_a_protective_sell_is_one_trip_of_its_strategy() -> None:
    fills = [
        fill(1, "buy", "1", "100", "0.1", "trend"),
        fill(2, "buy", "1", "110", "0.1", "trend"),
        fill(3, "sell", "2", "120", "0.2"),  # the take-profit: no strategy of its own
    ]
    (trip,) = round_trips(fills)
    # entry (100 + 110) / 2 = 105; (120 - 105) * 2 = 30 gross, less 0.4 of fees
    assert (trip.strategy, trip.side, trip.size) == ("trend", "long", D(2))
    assert (trip.entry_price, trip.exit_price, trip.fees, trip.pnl) == (D(105), D(120), D("0.4"), D("29.6"))
    assert (trip.opened_ns, trip.closed_ns) == (1, 3)
    assert [f.strategy for f in attributed(fills)] == ["trend"] * 3


def test_a_flip_closes_one_trip_and_opens_the_next_with_the_rest_and_its_share_of_the_fee() -> None:
    fills = [
        fill(1, "buy", "1", "100", "0", "a"),
        fill(2, "sell", "3", "100", "0.3", "b"),  # closes 1 (fee 0.1), opens a short of 2 (fee 0.2)
        fill(3, "buy", "2", "90", "0.2"),
    ]
    first, second = round_trips(fills)
    assert (first.strategy, first.side, first.pnl) == ("a", "long", D("-0.1"))
    # short 2 at 100, bought back at 90: 20 gross, fees 0.2 + 0.2
    assert (second.strategy, second.side, second.size, second.pnl) == ("b", "short", D(2), D("19.6"))


def test_a_position_still_open_is_no_trip() -> None:
    assert round_trips([fill(1, "buy", "1", "100", "0", "a"), fill(2, "sell", "0.5", "101", "0")]) == []
