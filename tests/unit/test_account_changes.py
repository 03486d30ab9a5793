"""What a StreamAccount change holds (trademesh.venues.runtime.account): only the balances and positions
whose values changed, a position gone as one of size 0, and several queued changes merged."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import Balance, Position
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.account import AccountState, _merged, changes

D = Decimal


def state(usdt: str, btc: str, position: str | None, as_of_ns: int = 1) -> AccountState:
    balances = {
        "USDT": Balance(asset="USDT", free=D(usdt), locked=D(0)),
        "BTC": Balance(asset="BTC", free=D(btc), locked=D(0)),
    }
    positions = {}
    if position is not None:
        positions["BTC/USDT"] = Position(
            symbol="BTC/USDT", size=D(position), entry_price=D(100), realized_pnl=D(0)
        )
    return AccountState(balances, positions, as_of_ns)


def test_only_what_changed_is_sent_with_its_new_value() -> None:
    changed = changes(state("1000", "1", "1"), state("900", "1", "2", as_of_ns=7))
    assert changed is not None and changed.as_of_ns == 7
    assert list(changed.balances) == ["USDT"] and changed.balances["USDT"].free == D(900)
    assert changed.positions["BTC/USDT"].size == D(2)
    response = changed.response(snapshot=False)
    assert not response.snapshot and [b.asset for b in response.balances] == ["USDT"]


def test_nothing_changed_is_no_change_and_a_position_gone_is_sent_flat() -> None:
    assert changes(state("1000", "1", "1"), state("1000", "1", "1", as_of_ns=9)) is None
    gone = changes(state("1000", "1", "1"), state("1000", "1", None))
    assert gone is not None and gone.positions["BTC/USDT"].size == 0
    assert gone.positions["BTC/USDT"].entry_price is None


def test_queued_changes_merge_into_one_the_latest_value_of_each_winning() -> None:
    first = tf.StreamAccountResponse(
        balances=[tf.Balance(asset="USDT", total="900"), tf.Balance(asset="BTC", total="1")], as_of_ns=1
    )
    second = tf.StreamAccountResponse(balances=[tf.Balance(asset="USDT", total="800")], as_of_ns=2)
    merged = _merged([first, second])
    assert {b.asset: b.total for b in merged.balances} == {"USDT": "800", "BTC": "1"}
    assert merged.as_of_ns == 2 and not merged.snapshot
