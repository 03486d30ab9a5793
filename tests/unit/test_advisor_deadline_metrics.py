"""The advisor's missed LLM deadlines: a decision the LLM did not answer within its deadline is
made without it and counted (trademesh_advisor_llm_deadline_misses_total); before the deadline,
nothing is counted and the decision still waits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import REGISTRY

from tests.advisor_support import MS, NOW_NS, context, signal
from trademesh.core.advisor.decision_journal import DecisionJournal
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import AdvisorConfig, ValidationConfig
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.runner import Pipeline

DEADLINE_NS = NOW_NS + 5_000 * MS  # the default --deadline-ms


class _SilentLlm:
    """Stand-in for an LLM that never answers."""

    async def synthesize(self, pending: Any, signal: Any, now_ns: int) -> Any:
        await asyncio.Event().wait()


class _Gatherer:
    async def gather(self, venue: str, symbol: str, as_of_ns: int | None = None) -> Any:
        return context()


def _misses() -> float:
    return REGISTRY.get_sample_value("trademesh_advisor_llm_deadline_misses_total") or 0.0


async def _expire_once(pipeline: Pipeline) -> None:
    """One pass of the expiry timer: its wait ends at once when stopped, then it expires once."""
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.expire(stop, 60.0))
    await asyncio.sleep(0)  # the timer is waiting
    stop.set()
    await asyncio.wait_for(task, 5)


async def _until_in_flight() -> None:
    deadline = time.monotonic() + 5
    while REGISTRY.get_sample_value("trademesh_advisor_llm_in_flight") != 1.0:
        assert time.monotonic() < deadline, "the decision never waited for the LLM"
        await asyncio.sleep(0.01)


async def test_a_decision_the_llm_did_not_answer_in_time_counts_a_missed_deadline() -> None:
    config = AdvisorConfig(validation=ValidationConfig(cap_target_at_swing=False))
    core = AdvisorCore(config, None, Calibration.identity())
    now = [NOW_NS]
    pipeline = Pipeline(core, _Gatherer(), _SilentLlm(), DecisionJournal(), max_in_flight=1,  # type: ignore[arg-type]
                        clock=lambda: now[0])  # fmt: skip
    before = _misses()
    deciding = asyncio.create_task(pipeline.decide(signal(), publish=False, hypothetical=True))
    try:
        await _until_in_flight()
        now[0] = DEADLINE_NS - MS
        await _expire_once(pipeline)
        assert _misses() == before and not deciding.done()

        now[0] = DEADLINE_NS
        await _expire_once(pipeline)
        decision = await asyncio.wait_for(deciding, 5)
    finally:
        deciding.cancel()
    assert _misses() == before + 1
    assert decision.deterministic_synthesis


def test_a_new_pipeline_exports_every_decision_outcome_before_the_first_decision() -> None:
    # A rate over trademesh_advisor_decisions_total{outcome} has no series until the series exist:
    # they are created, at 0 unless decisions were counted, with the pipeline.
    config = AdvisorConfig(validation=ValidationConfig(cap_target_at_swing=False))
    core = AdvisorCore(config, None, Calibration.identity())
    Pipeline(core, _Gatherer(), None, DecisionJournal(), max_in_flight=1)  # type: ignore[arg-type]
    for outcome in ("intent", "blocked"):
        value = REGISTRY.get_sample_value("trademesh_advisor_decisions_total", {"outcome": outcome})
        assert value is not None, outcome
