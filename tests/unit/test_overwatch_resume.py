"""What a new Overwatch leader owes the bus (trademesh.core.overwatch.resume.owed_changes): a change for a
market whose regime is not the last one published of it, and nothing else."""

from __future__ import annotations

from trademesh.core.domain.regime import Features, Regime
from trademesh.core.overwatch.engine import BoardEntry, MarketKey
from trademesh.core.overwatch.resume import owed_changes

FEATURES = Features(20.0, 25.0, 15.0, 1.0, 1.0)


def _entry(symbol: str, regime: Regime) -> BoardEntry:
    return BoardEntry(MarketKey("sim", symbol, "1m"), regime, 100, FEATURES, 200, 5_000, 5_060)


def test_a_market_whose_regime_is_not_its_last_published_one_is_owed_a_change() -> None:
    board = [
        _entry("A/USDT", Regime.TREND_UP),  # last published range: owed
        _entry("B/USDT", Regime.RANGE),  # last published range: nothing
        _entry("C/USDT", Regime.TREND_DOWN),  # never published: owed, from unknown
        _entry("D/USDT", Regime.UNKNOWN),  # warming again: nothing to say
    ]
    published = {
        ("sim", "A/USDT"): Regime.RANGE,
        ("sim", "B/USDT"): Regime.RANGE,
        ("sim", "D/USDT"): Regime.RANGE,
    }
    owed = owed_changes(board, published)
    assert [(o.key.symbol, o.previous, o.regime) for o in owed] == [
        ("A/USDT", Regime.RANGE, Regime.TREND_UP),
        ("C/USDT", Regime.UNKNOWN, Regime.TREND_DOWN),
    ]
    assert (owed[0].since_ns, owed[0].at_bar_ns, owed[0].at_ns) == (100, 5_000, 5_060)
