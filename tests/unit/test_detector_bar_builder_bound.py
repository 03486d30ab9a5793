"""The detector's bar builder keeps a bounded float -> Decimal cache (issue 57 item 2): a trade
stream whose sizes never repeat (the sim's) leaves it within its cap however long it runs, and the
bars it builds are the same as without the cache."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.detector.engine.values import TradeValue
from trademesh.core.detector.modules import bar_builder
from trademesh.core.detector.modules.bar_builder import BarBuilder
from trademesh.core.domain.model import Timeframe

_S = 1_000_000_000


def _trades(n: int) -> list[TradeValue]:
    # Prices on a grid of 50 ticks, sizes all different: what fills the cache.
    return [
        TradeValue(
            "BTC/USDT", _S + i * _S // 10, 65_000 + (i % 50) * 0.5, 0.001 + i * 1e-7, i % 2 == 0, str(i)
        )
        for i in range(n)
    ]


def test_the_cache_stays_within_its_cap_for_trades_whose_sizes_never_repeat() -> None:
    builder = BarBuilder("BTC/USDT", Timeframe.M1, lateness_ns=0)
    largest = 0
    for trade in _trades(20_000):  # 40,050 distinct values: past the cap many times
        builder.add(trade)
        largest = max(largest, len(builder._decimals))
    assert bar_builder._MAX_DECIMALS <= 4_096
    # Emptied when past the cap, before a bar's values go in: at most one bar's worth over it.
    assert largest <= bar_builder._MAX_DECIMALS + 40, largest


def test_the_bars_are_exact_whatever_the_cache_held() -> None:
    builder = BarBuilder("BTC/USDT", Timeframe.S1, lateness_ns=0)
    closed = [bar for trade in _trades(9_000) for bar in builder.add(trade)]
    trades = _trades(9_000)
    assert len(closed) >= 890
    for bar in (closed[0], closed[500], closed[-1]):  # before and after the cache was emptied
        second = [t for t in trades if bar.open_time_ns <= t.ts_event_ns < bar.open_time_ns + _S]
        assert bar.volume == float(sum(Decimal(repr(t.size)) for t in second)), "exact decimals"
