"""The gauges the fuzz test reads to tell work a request started and nobody ended: the tasks on
a process's event loop (trademesh_event_loop_tasks) and the retry loops failing now
(trademesh_retrying_loops)."""

from __future__ import annotations

import asyncio
import gc

from prometheus_client import REGISTRY

from core.foundations.backoff import Backoff
from core.foundations.rpc.metrics import count_loop_tasks


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
