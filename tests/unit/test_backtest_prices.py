"""The report's price lines (trademesh.core.backtest.prices): a point at each bucket's end the data
crossed, with the last trade's price before it, and never more points than asked."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.backtest.prices import PriceLines

_S = 1_000_000_000


def test_a_crossed_buckets_end_takes_the_prices_that_stood_there() -> None:
    lines = PriceLines(0, 100 * _S, points=10)  # buckets of 10 s
    assert lines.bucket_ns == 10 * _S and lines.due_ns == 10 * _S
    lines.crossed(12 * _S, {"BTC/USDT": Decimal("100")})
    assert lines.due_ns == 20 * _S
    # Data jumping 3 buckets ahead: one point (the price stood unchanged), the next end after it.
    lines.crossed(47 * _S, {"BTC/USDT": Decimal("101"), "ETH/USDT": Decimal("5")})
    assert lines.due_ns == 50 * _S
    lines.point(100 * _S, {"BTC/USDT": Decimal("99")})
    lines.point(100 * _S, {"BTC/USDT": Decimal("98")})  # one point a time: the first kept
    assert lines.lines == {
        "BTC/USDT": [(10 * _S, Decimal("100")), (20 * _S, Decimal("101")), (100 * _S, Decimal("99"))],
        "ETH/USDT": [(20 * _S, Decimal("5"))],
    }


def test_a_bucket_is_a_second_at_the_least() -> None:
    assert PriceLines(0, 5 * _S, points=2000).bucket_ns == _S
    assert PriceLines(0, 365 * 86_400 * _S).bucket_ns == 15_768 * _S  # a year: 2,000 points
