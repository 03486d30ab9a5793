"""A backtest's memory stays bounded over a long history (issue 18): the peak RSS of the whole
chain over 20,000 synthetic 1-minute bars (60,000 events) against 2,000, each in its own
process (both forked, at once, from one that imported the chain: tests/integration/backtest_rss.py).
The events stream through; what a run keeps grows with what it did (decisions, orders, fills,
the curve's samples), not with the data."""

from __future__ import annotations

import pytest

from tests.forked_services import run_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a process and its two forks, about 10 s


def peak_kib(*bars: int) -> list[tuple[int, int, int]]:
    """Per count of bars, its run's peak RSS before and after it ran, and its events."""
    done = run_command([str(count) for count in bars], timeout_s=600, module="tests.integration.backtest_rss")
    assert done.returncode == 0, done.stderr
    runs = [tuple(map(int, line.split())) for line in done.stdout.splitlines()]
    assert len(runs) == len(bars), done.stdout
    return [(before, after, events) for before, after, events, _ in runs]


def test_ten_times_the_history_takes_about_the_same_memory() -> None:
    (before_1, after_1, events_1), (before_10, after_10, events_10) = peak_kib(2_000, 20_000)
    assert events_10 == 10 * events_1
    # The run itself (over the process with its modules loaded): a few MiB, and far less than
    # ten times as much for ten times the events (holding them would be hundreds of MiB).
    grew_1, grew_10 = after_1 - before_1, after_10 - before_10
    assert after_10 < 1.3 * after_1, (after_1, after_10)
    assert grew_10 < 40 * 1024, f"the run took {grew_10 // 1024} MiB over 20,000 bars"
    assert grew_10 < 10 * max(grew_1, 1024), (grew_1, grew_10)
