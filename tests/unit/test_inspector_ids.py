"""The inspector's client order ids (trademesh.core.inspector.engine.ids) are uuid5 of what the
order is for, as 32 hex digits: made from the name's SHA-1 directly, without the UUID built to
read its hex, they are uuid.uuid5's own, so every id a run or a journal's replay gives is the
one it gave before (a venue keeps the ids it has seen; a backtest's twins are matched by them)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from trademesh.core.inspector.engine import ids

NAMESPACE = uuid.UUID("6f1e0c4a-3b2d-4e8f-9a7c-696e73706563")


def _uuid5(name: str) -> str:
    return uuid.uuid5(NAMESPACE, name).hex


@given(st.text())
def test_an_id_is_uuid5_of_its_name(name: str) -> None:
    assert ids._uuid5_hex(name) == _uuid5(name)


def test_each_order_id_is_uuid5_of_what_the_order_is_for() -> None:
    assert ids.entry_order_id("i-1") == _uuid5("order/i-1")
    assert ids.protective_order_id("sim", "BTC/USDT", "stop_loss", 3, "backtest/1") == _uuid5(
        "protect/backtest/1/sim/BTC/USDT/stop_loss/3"
    )
    assert ids.flatten_order_id("sim", "ETH/USDT", 42) == _uuid5("flatten/sim/ETH/USDT/42")
    assert ids.reduce_order_id("okx", "BTC-USDT-SWAP", 7) == _uuid5("reduce/okx/BTC-USDT-SWAP/7")
