"""The gauges the fuzz test reads to tell work a request started and nobody ended: the tasks on
a process's event loop (trademesh_event_loop_tasks) and the retry loops failing now
(trademesh_retrying_loops); and how it reads them after the fuzz (the least over a window)."""

from __future__ import annotations

import asyncio
import gc
import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from tests.integration.fuzz_mesh import Work
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.rpc.metrics import count_loop_tasks


def _sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, f"no {name}"
    return value


def test_a_backoff_counts_as_retrying_from_its_first_failure_until_it_succeeds_or_is_gone() -> None:
    before = _sample("trademesh_retrying_loops")
    backoff = Backoff(0.1, 1.0)
    assert _sample("trademesh_retrying_loops") == before  # not failed yet
    backoff.next()
    backoff.next()
    assert _sample("trademesh_retrying_loops") == before + 1  # one loop, however many failures
    backoff.reset()
    assert _sample("trademesh_retrying_loops") == before
    backoff.next()
    del backoff  # its loop ended while failing
    gc.collect()
    assert _sample("trademesh_retrying_loops") == before


def test_the_loop_tasks_gauge_counts_the_tasks_not_done() -> None:
    """On a loop of the test's own (no other test's or fixture's task on it to end meanwhile)."""
    loop = asyncio.new_event_loop()
    try:
        count_loop_tasks(loop)
        assert _sample("trademesh_event_loop_tasks") == 0
        started = [loop.create_task(asyncio.sleep(60)) for _ in range(3)]
        assert _sample("trademesh_event_loop_tasks") == 3
        for task in started:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*started, return_exceptions=True))
        assert _sample("trademesh_event_loop_tasks") == 0
    finally:
        loop.close()


def test_work_read_in_the_middle_of_a_round_is_not_left_but_work_in_every_reading_is() -> None:
    """The gateway after the fuzz: 24 tasks, and 51 while its services board checked every
    instance (one reading in such a moment failed the suite once, though nothing was left)."""
    before = Work(24, 0, {"gateway_mux_sessions": 0})
    quiet, in_a_round = Work(24, 0, {"gateway_mux_sessions": 0}), Work(51, 0, {"gateway_mux_sessions": 0})
    assert in_a_round.over(before, 20, 8) == ["tasks 24 -> 51"]
    assert Work.least([quiet, in_a_round, quiet, Work(float("nan"), 0)]).over(before, 20, 8) == []
    left = [Work(tasks + 21, 1, {"gateway_mux_sessions": 9}) for tasks in (24, 51, 24)]
    assert Work.least(left).over(before, 20, 8) == [
        "tasks 24 -> 45",
        "retry loops failing 0 -> 1",
        "gateway_mux_sessions 0 -> 9",
    ]


_COUNTS = st.one_of(st.integers(0, 60).map(float), st.just(math.nan))
_WORK = st.builds(
    Work,
    _COUNTS,
    _COUNTS,
    st.dictionaries(st.sampled_from(["gateway_mux_sessions", "trademesh_x_followed_markets"]), _COUNTS),
)


@given(st.lists(_WORK, min_size=1, max_size=12), st.integers(1, 12), _WORK)
def test_a_watch_ended_once_the_least_so_far_is_within_bounds_gives_the_whole_windows_verdict(
    readings: list[Work], first: int, before: Work
) -> None:
    """What lets the fuzz's watch end as soon as every least is within its bound, each count read
    (tests.integration.fuzz_mesh.watch_work): more readings only lower a least, so a window whose
    first readings leave nothing over its bound leaves nothing over it once whole. A count not
    read yet (only NaN so far) holds nothing back: its first reading may be over."""
    early = Work.least(readings[:first])
    whole = Work.least(readings).over(before, 20, 8)
    if early.read and not early.over(before, 20, 8):
        assert not whole, (early, whole)
