"""Gap markers without a database: a recorded GAP notice as the gap_markers tool answers it (its
span, the bars it touches, the open rule) and as the advisor's context counts it (cut to the
window of its bars), down to the quality gate."""

from __future__ import annotations

import dataclasses

from tests.advisor_support import NOW_NS, context, signal
from trademesh.core.advisor.engine.config import QualityConfig
from trademesh.core.advisor.engine.quality import assess_quality
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.advisor.gather import open_gap
from trademesh.core.domain.model import Timeframe
from trademesh.core.tools.gaps import GapNotice, gap_marker, last_bar_open_ns

S = 1_000_000_000
MINUTE = 60 * S
T0 = 1_767_225_600 * S  # a whole minute


def test_a_gap_spans_from_the_last_trade_seen_to_the_notice_and_touches_each_bar_between() -> None:
    notice = GapNotice(T0 + 3 * MINUTE + 5 * S, T0 + 50 * S, "stream lost")
    marker = gap_marker(notice, Timeframe.M1, frozenset())
    assert (marker["start_ns"], marker["end_ns"]) == (T0 + 50 * S, T0 + 3 * MINUTE + 5 * S)
    assert marker["bars"] == 4  # the minutes opening at T0, +1, +2, +3
    assert marker["open"] and marker["reason"] == "stream lost"
    assert marker["time"] == "2026-01-01T00:03:05Z"
    assert gap_marker(notice, Timeframe.S1, frozenset())["bars"] == 136  # 1s bars from :50 to 3:05


def test_a_gap_without_its_start_is_the_bar_of_its_notice() -> None:
    notice = GapNotice(T0 + 30 * S, None, "stale")
    marker = gap_marker(notice, Timeframe.M1, frozenset())
    assert (marker["start_ns"], marker["since_ns"], marker["bars"]) == (T0 + 30 * S, None, 1)


def test_a_gap_is_open_until_the_bar_holding_its_notice_is_repaired() -> None:
    notice = GapNotice(T0 + 3 * MINUTE + 5 * S, T0 + 50 * S, "stream lost")
    assert last_bar_open_ns(notice, Timeframe.M1) == T0 + 3 * MINUTE
    # A repaired bar at the gap's start may be an earlier repair's: it does not close this gap.
    assert gap_marker(notice, Timeframe.M1, frozenset({T0, T0 + MINUTE}))["open"]
    assert not gap_marker(notice, Timeframe.M1, frozenset({T0 + 3 * MINUTE}))["open"]
    # Repaired at 1m says nothing of the 1s bars (most venues have no 1s history).
    assert gap_marker(notice, Timeframe.S1, frozenset({T0 + 3 * MINUTE}))["open"]


def test_the_context_counts_only_the_bars_of_an_open_gap_within_its_window() -> None:
    notice = GapNotice(T0 + 10 * MINUTE + 5 * S, T0, "stream lost")
    raw = gap_marker(notice, Timeframe.M1, frozenset())
    assert raw["bars"] == 11
    window_start = T0 + 7 * MINUTE
    gap = open_gap(raw, window_start, Timeframe.M1)
    assert (gap.start_ns, gap.end_ns, gap.bars, gap.repaired) == (window_start, raw["end_ns"], 4, False)


def test_one_open_gap_in_the_window_blocks_a_directional_signal_at_the_default_threshold() -> None:
    raw = gap_marker(GapNotice(NOW_NS - 2 * S, NOW_NS - 7 * S, "stream lost"), Timeframe.S1, frozenset())
    ctx = dataclasses.replace(context(), gaps=(open_gap(raw, NOW_NS - 60 * S, Timeframe.S1),))
    gate = assess_quality(snapshot(signal(), ctx, NOW_NS), QualityConfig())
    assert not gate.passed and gate.reasons == ("1 open gap(s), 6 bar(s) missing",)
