"""The live connector's index of orders by id and client id: what it answers, and its bound."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import Order, OrderType, Side, TimeInForce
from trademesh.venues.live.order_index import OrderIndex


def order(order_id: str, client_order_id: str, symbol: str) -> Order:
    return Order(
        venue="v",
        order_id=order_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=Decimal(1),
        size=Decimal(1),
    )


def test_an_order_is_found_by_its_id_and_its_client_id() -> None:
    index = OrderIndex()
    index.learn(order("1", "c-1", "BTC/USDT"))
    assert index.symbol_of_order("1") == "BTC/USDT"
    assert index.symbol_of_client_id("c-1") == "BTC/USDT"
    assert index.symbol_of_order("2") is None and index.symbol_of_client_id("c-2") is None


def test_an_order_without_a_symbol_or_ids_teaches_nothing() -> None:
    index = OrderIndex()
    index.learn(order("1", "c-1", ""))
    index.learn(order("", "", "BTC/USDT"))
    assert len(index) == 0


def test_the_index_keeps_the_most_recently_seen_ids_only() -> None:
    index = OrderIndex(limit=3)
    for n in range(5):
        index.learn(order(str(n), f"c-{n}", "BTC/USDT"))
    index.learn(order("2", "c-2", "BTC/USDT"))  # seen again: the most recent
    index.learn(order("5", "c-5", "ETH/USDT"))
    assert len(index) == 3
    assert [index.symbol_of_client_id(f"c-{n}") for n in range(6)] == [
        None, None, "BTC/USDT", None, "BTC/USDT", "ETH/USDT"
    ]  # fmt: skip
