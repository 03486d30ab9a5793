"""Round trips from the books (trademesh.core.ledger.engine.trips): fills posted by the ledger's own core,
their transfers read back as the store gives them, and each trip's result worked by hand."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.test_ledger_core import PERP, SPOT, V, deposit, fill, post
from trademesh.core.domain.model import Side
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.model import Transfer
from trademesh.core.ledger.engine.trips import RoundTrip, count_trips, round_trips, settlement_assets

D = Decimal


def _posted(core: LedgerCore, *events: object) -> list[Transfer]:
    transfers: list[Transfer] = []
    for event in events:
        transfers.extend(post(core, event).transfers)  # type: ignore[arg-type]
    return transfers


def _trips(core: LedgerCore, transfers: list[Transfer]) -> list[tuple[str, str, Decimal]]:
    return [(t.strategy, t.asset, t.pnl) for t in round_trips(transfers, core.accounts)]


def test_a_perpetual_opened_added_to_and_closed_is_one_trip_net_of_its_fees() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    transfers = _posted(
        core,
        fill(Side.BUY, "1", "100", perp=True, fee="0.1"),
        fill(Side.BUY, "1", "104", perp=True, fee="0.1"),  # average 102
        fill(Side.SELL, "1", "110", perp=True, fee="0.1"),  # realises 8: still open
        fill(Side.SELL, "1", "101", perp=True, fee="0.1"),  # realises -1: flat
    )
    assert _trips(core, transfers) == [("trend", "USDT", D("6.6"))]  # 8 - 1 - 0.4


def test_a_losing_trip_and_a_winning_one_of_two_strategies_are_counted_apart() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    transfers = _posted(
        core,
        fill(Side.BUY, "1", "100", perp=True, strategy="a"),
        fill(Side.SELL, "1", "90", perp=True, strategy="a"),  # -10
        fill(Side.SELL, "2", "100", perp=True, strategy="b"),  # a short
        fill(Side.BUY, "2", "95", perp=True, strategy="b"),  # +10
        fill(Side.BUY, "1", "100", perp=True, strategy="a"),
        fill(Side.SELL, "1", "103", perp=True, strategy="a"),  # +3
    )
    trips = round_trips(transfers, core.accounts)
    assert [(t.strategy, t.pnl, t.won) for t in trips] == [
        ("a", D(-10), False), ("b", D(10), True), ("a", D(3), True),
    ]  # fmt: skip
    counts = count_trips(trips)
    assert (counts["a", "USDT"].round_trips, counts["a", "USDT"].winners) == (2, 1)
    assert (counts["b", "USDT"].round_trips, counts["b", "USDT"].winners) == (1, 1)
    # Counted from a time: only the trips closed since.
    assert count_trips(trips, since_ns=trips[1].closed_ns)["a", "USDT"].round_trips == 1


def test_a_flip_closes_the_trip_with_its_share_of_the_fee_and_opens_the_next() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    transfers = _posted(
        core,
        fill(Side.BUY, "1", "100", perp=True, fee="0.2"),
        # Sells 4: closes 1 (realises +10, bears a quarter of the 0.8 fee), opens 3 short.
        fill(Side.SELL, "4", "110", perp=True, fee="0.8"),
        fill(Side.BUY, "3", "112", perp=True, fee="0.3"),  # the short loses 6
    )
    trips = round_trips(transfers, core.accounts)
    assert [t.pnl for t in trips] == [D("9.6"), D("-6.9")]  # 10 - 0.2 - 0.2; -6 - 0.6 - 0.3
    assert trips[1].opened_ns == trips[0].closed_ns


def test_an_open_position_is_not_a_trip_and_a_fee_in_a_third_asset_is_left_out() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    deposit(core, "10", asset="BNB")
    transfers = _posted(
        core,
        fill(Side.BUY, "1", "100", fee="0.01", fee_asset="BNB"),
        fill(Side.SELL, "1", "101", fee="0.01", fee_asset="BNB"),
        fill(Side.BUY, "1", "100"),  # open at the end
    )
    assert _trips(core, transfers) == [("trend", "USDT", D(1))]
    assert SPOT in {t.symbol for t in round_trips(transfers, core.accounts)}


def test_a_trip_closed_at_its_entry_price_is_in_the_cost_asset_and_not_a_winner() -> None:
    core = LedgerCore()
    deposit(core, "10000")
    transfers = _posted(
        core,
        fill(Side.BUY, "1", "100", perp=True, fee="0.1"),
        fill(Side.SELL, "1", "100", perp=True, fee="0.1"),
    )
    settle = settlement_assets(core.accounts.values())
    assert settle[("trend", V, PERP)] == "USDT"
    (trip,) = round_trips(transfers, core.accounts, settle)
    assert trip == RoundTrip("trend", V, PERP, trip.opened_ns, trip.closed_ns, "USDT", D("-0.2"))
    assert not trip.won
