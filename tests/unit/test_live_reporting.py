"""A live venue's executions as the caller knows the orders: the reduce-only flag a spot
exchange reads back without, and the reason of a cancel whichever report of it comes first."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import Execution, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from trademesh.venues.live.convert import order_from_ccxt
from trademesh.venues.live.reporting import ExecutionReporter

SYMBOL = "BTC/CHF"


def _ccxt(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "1", "clientOrderId": "tp-1", "symbol": SYMBOL, "side": "sell", "amount": 1,
        "type": "limit", "price": 90000, "status": "open",
    }  # fmt: skip
    return {**base, **fields}


def _reporter() -> tuple[ExecutionReporter, list[Execution]]:
    reporter = ExecutionReporter()
    published: list[Execution] = []
    reporter.publish = published.append
    return reporter, published


def test_a_reduce_only_order_stays_reduce_only_when_the_exchange_reads_it_back_without() -> None:
    reporter, published = _reporter()
    request = OrderRequest(
        SYMBOL, Side.SELL, OrderType.LIMIT, Decimal(1), Decimal(90000), TimeInForce.GTC,
        client_order_id="tp-1", reduce_only=True,
    )  # fmt: skip
    reporter.expect_reduce_only(request)
    reporter.report(order_from_ccxt("kraken", _ccxt()))  # Kraken spot: no reduceOnly in the answer
    # Known by its order id from then on: a listing without the client id keeps it too.
    listed = reporter.mend(order_from_ccxt("kraken", _ccxt(clientOrderId="")))
    other = reporter.mend(order_from_ccxt("kraken", _ccxt(id="2", clientOrderId="entry-1")))
    assert [e.order.reduce_only for e in published] == [True]
    assert (listed.reduce_only, other.reduce_only) == (True, False)


def test_a_cancel_says_why_even_when_the_private_stream_reports_it_before_the_answer() -> None:
    reporter, published = _reporter()
    key = reporter.expect_cancel("1", "", "dead-man: no heartbeat within 10000 ms; reduce-only orders kept")
    reporter.report(order_from_ccxt("kraken", _ccxt(status="canceled")))  # the push, first
    answer = reporter.report(order_from_ccxt("kraken", _ccxt(status="canceled")))  # the REST answer
    reporter.forget_cancel(key)
    later = reporter.mend(order_from_ccxt("kraken", _ccxt(id="3", status="canceled")))
    assert [(e.order.status, e.order.status_reason) for e in published] == [
        (OrderStatus.CANCELED, "dead-man: no heartbeat within 10000 ms; reduce-only orders kept")
    ]
    assert answer.status_reason == published[0].order.status_reason
    assert later.status_reason == "", "a cancel nobody asked for here has no reason"


def test_a_cancel_all_gives_its_reason_to_the_orders_of_its_symbol_only() -> None:
    reporter, _ = _reporter()
    token = reporter.expect_cancel_all(SYMBOL, "cancel-all: inspector: closing all")
    mine = reporter.mend(order_from_ccxt("kraken", _ccxt(status="canceled")))
    elsewhere = reporter.mend(order_from_ccxt("kraken", _ccxt(id="4", symbol="ETH/CHF", status="canceled")))
    still_open = reporter.mend(order_from_ccxt("kraken", _ccxt(id="5")))
    reporter.forget_cancel_all(token)
    after = reporter.mend(order_from_ccxt("kraken", _ccxt(id="6", status="canceled")))
    assert mine.status_reason == "cancel-all: inspector: closing all"
    assert (elsewhere.status_reason, still_open.status_reason, after.status_reason) == ("", "", "")
