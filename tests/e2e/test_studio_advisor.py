"""Studio's Advisor page in a real browser against a real mesh with a real advisor deciding on the
detector's signals (see studio_mesh): the decision log live and newest first, a decision's 8
stages with their outputs and its conviction before and after calibration, the LLM's trace with
its hallucination flags set apart, a blocked decision with its reasons, an API error shown in the
page, and the reliability diagram of the calibration in use.

The advisor's LLM is the stand-in (tests/llm_standin.py) in its lying mode, as a model that
hallucinates: every answer takes the signal's opposite side without a reason and quotes numbers
found nowhere, so every decision that reaches stage 6 carries hallucination flags and falls back
to the deterministic synthesis. What the page shows is checked against what the advisor itself
answers (its gRPC API, not through the gateway).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import DECIMAL, WAIT_MS, log_in
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
# The examples signal within a minute or two of a start; the advisor decides each at once.
DECISION_MS = 120_000
STAGES = [
    "context",
    "quality-gate",
    "evaluation",
    "conviction",
    "calibration",
    "llm-synthesis",
    "validation",
    "intent",
]
EXAMPLE_STRATEGIES = {"trend", "mean_reversion", "order_flow"}
# What the lying stand-in claims (tests/llm_standin.py's _INVENTED): numbers in no context.
INVENTED = ("97.31", "4.27", "13")
# The page's warning style of a hallucination flag (styles.css: --flag-bg, --flag).
FLAG_BACKGROUND = "rgb(59, 36, 19)"
FLAG_ACCENT = "rgb(240, 136, 62)"


@pytest.fixture(scope="module")
async def advisor(mesh: StudioMesh) -> AsyncIterator[ServiceProcess]:
    """The advisor, for this module only: its LLM the stand-in, lying."""
    started = await asyncio.to_thread(mesh.start_advisor, "lying")
    yield started
    await asyncio.to_thread(mesh.stop_advisor)


def _status(value: int) -> str:
    return am.StageStatus.Name(value).removeprefix("STAGE_STATUS_").lower()  # type: ignore[arg-type]


async def _decision(advisor: ServiceProcess, decision_id: str) -> am.Decision:
    async with grpc.aio.insecure_channel(advisor.address) as channel:
        stub: av_grpc.AdvisorAsyncStub = av_grpc.AdvisorStub(channel)
        reply = await stub.GetDecision(
            av.GetDecisionRequest(decision_id=decision_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return reply.decision


async def _calibration(advisor: ServiceProcess) -> am.Calibration:
    async with grpc.aio.insecure_channel(advisor.address) as channel:
        stub: av_grpc.AdvisorAsyncStub = av_grpc.AdvisorStub(channel)
        reply = await stub.GetCalibration(av.GetCalibrationRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    return reply.calibration


async def _decide(advisor: ServiceProcess, signal: sig.Signal) -> am.Decision:
    """Decide, published: on the bus and in the recorder like any decision."""
    async with grpc.aio.insecure_channel(advisor.address) as channel:
        stub: av_grpc.AdvisorAsyncStub = av_grpc.AdvisorStub(channel)
        reply = await stub.Decide(av.DecideRequest(signal=signal, publish=True), metadata=AUTH, timeout=30)
    return reply.decision


async def open_advisor(page: Page, mesh: StudioMesh, key: str) -> None:
    await log_in(page, mesh, key)
    await page.click("#nav-advisor")
    await expect(page.locator("#advisor-page")).to_be_visible()
    await expect(page.locator("#trading-page")).to_be_hidden()
    await expect(page.locator("#nav-advisor")).to_have_attribute("aria-current", "page")


async def flagged_decision(page: Page) -> str:
    """The id of the newest decision in the log whose LLM answer was flagged (a detector's signal
    through stage 6)."""
    row = page.locator('#decisions-body tr[data-decision-id]:not([data-flags="0"])').first
    await expect(row).to_be_attached(timeout=DECISION_MS)
    decision_id = await row.get_attribute("data-decision-id")
    assert decision_id
    return decision_id


async def open_decision(page: Page, decision_id: str) -> None:
    await page.locator(f'#decisions-body tr[data-decision-id="{decision_id}"] a').click()
    await expect(page.locator("#decision-view")).to_have_attribute("data-decision-id", decision_id)
    await expect(page.locator("#decision-title")).to_be_visible(timeout=WAIT_MS)


async def test_the_detectors_signals_become_decisions_in_the_log_each_with_its_8_stages_and_convictions(
    page: Page, mesh: StudioMesh, api_key: str, advisor: ServiceProcess
) -> None:
    await open_advisor(page, mesh, api_key)
    decision_id = await flagged_decision(page)
    await expect(page.locator("#decisions .status")).to_have_text("live", timeout=WAIT_MS)
    times = await page.locator("#decisions-body tr[data-decision-id]").evaluate_all(
        "rs => rs.map(r => r.dataset.ts)"
    )
    assert [int(t) for t in times] == sorted((int(t) for t in times), reverse=True), "newest first"
    decision = await _decision(advisor, decision_id)
    assert decision.strategy_id in EXAMPLE_STRATEGIES and decision.signal_id and not decision.hypothetical

    await open_decision(page, decision_id)
    await expect(page).to_have_url(re.compile(rf"#/advisor/{decision_id}$"))
    stages = page.locator("#decision-stages li.stage")
    await expect(stages).to_have_count(8)
    assert await stages.evaluate_all("ls => ls.map(l => l.dataset.stage)") == STAGES
    shown = await stages.evaluate_all("ls => ls.map(l => l.dataset.status)")
    assert shown == [_status(s.status) for s in decision.stages]
    for name, stage in zip(STAGES, decision.stages, strict=True):
        item = page.locator(f'#decision-stages li[data-stage="{name}"]')
        await expect(item.locator(".summary")).to_have_text(stage.summary)
        fields = len(json.loads(stage.output_json)) if stage.output_json else 0
        await expect(item.locator("table.output tr")).to_have_count(fields)

    # The conviction before and after calibration, as the advisor sent them.
    conviction = decision.conviction
    assert DECIMAL.match(conviction.raw) and DECIMAL.match(conviction.calibrated)
    await expect(page.locator("#conviction-raw .value")).to_have_text(conviction.raw)
    await expect(page.locator("#conviction-calibrated .value")).to_have_text(conviction.calibrated)
    move = re.compile(r"^(▲ raised|▼ lowered|= unchanged)$")
    await expect(page.locator("#calibration-move")).to_have_text(move)
    # The calibration panel follows the decision's regime (its own calibrator, else the fallback).
    regimes = {r.regime for r in (await _calibration(advisor)).regimes}
    expected = conviction.regime if conviction.regime in regimes else "fallback"
    await expect(page.locator("#calibration")).to_have_attribute("data-regime", expected)
    await page.locator("#advisor-page").screenshot(path=artifact("advisor-decision-stages"))


async def test_a_hallucinating_answer_is_flagged_highlighted_and_traced(
    page: Page, mesh: StudioMesh, api_key: str, advisor: ServiceProcess
) -> None:
    await open_advisor(page, mesh, api_key)
    decision_id = await flagged_decision(page)
    decision = await _decision(advisor, decision_id)
    row = page.locator(f'#decisions-body tr[data-decision-id="{decision_id}"]')
    await expect(row.locator('[data-col="flags"]')).to_have_text(f"⚠ {len(decision.hallucination_flags)}")
    await expect(row.locator('[data-col="flags"]')).to_have_class("flagged")
    await open_decision(page, decision_id)

    flags = page.locator("#hallucination-flags li.flag")
    await expect(flags).to_have_count(len(decision.hallucination_flags))
    kinds = set(await flags.evaluate_all("fs => fs.map(f => f.dataset.kind)"))
    assert {"invented_number", "contradicting_direction"} <= kinds
    style = await flags.first.evaluate(
        "f => { const s = getComputedStyle(f); return [s.backgroundColor, s.borderLeftColor]; }"
    )
    assert style == [FLAG_BACKGROUND, FLAG_ACCENT], "a flag stands out in the warning style"
    # The invented number is marked where the model wrote it. Which of the stand-in's numbers
    # are invented is the advisor's call: one may happen to lie near a number of the context
    # (an RSI of 97.3, a probability of 0.973), so the flags name them.
    invented = [
        f.detail.split()[0]
        for f in decision.hallucination_flags
        if f.kind == am.HALLUCINATION_KIND_INVENTED_NUMBER
    ]
    assert invented and set(invented) <= set(INVENTED), invented
    mark = page.locator("#llm-answer mark.hallucinated", has_text=invented[0])
    await expect(mark).to_be_visible()
    assert await mark.evaluate("m => getComputedStyle(m).backgroundColor") == FLAG_ACCENT

    # The trace: the model that answered, its answer discarded, the deterministic synthesis and why.
    assert decision.llm.model == "primary" and decision.deterministic_synthesis
    await expect(page.locator('#llm-trace [data-fact="model"]')).to_contain_text("primary")
    await expect(page.locator('#llm-trace [data-fact="answer"]')).to_contain_text("discarded")
    await expect(page.locator("#synthesis-source")).to_have_text("deterministic")
    await expect(page.locator("#llm-fallback")).to_contain_text("discarded: contradicting_direction")
    await expect(page.locator("#synthesis-reasoning")).to_have_text(decision.synthesis.reasoning)
    synthesis = page.locator('#decision-stages li[data-stage="llm-synthesis"]')
    await expect(synthesis).to_have_attribute("data-status", "degraded")
    await expect(page.locator("#llm-tools")).to_have_text("no tool calls")
    await page.locator("#decision-view").screenshot(path=artifact("advisor-hallucination-flags"))


async def test_a_blocked_decision_shows_where_and_why_live_and_after_a_reload(
    page: Page, mesh: StudioMesh, api_key: str, advisor: ServiceProcess
) -> None:
    await open_advisor(page, mesh, api_key)
    await expect(page.locator("#decisions .status")).to_have_text("live", timeout=WAIT_MS)
    # A market the sim does not list: no instrument, no price, so stage 1 blocks it.
    signal = sig.Signal(
        signal_id=f"e2e-{uuid.uuid4()}", venue="sim", symbol="ZZZ/USDT", direction=sig.DIRECTION_LONG,
        conviction="0.7", score="0.7", threshold="0.5", strategy_id="e2e",
    )  # fmt: skip
    decision = await _decide(advisor, signal)
    assert decision.outcome == am.OUTCOME_BLOCKED and decision.blocked_stage == am.STAGE_CONTEXT
    reasons = list(decision.stages[0].reasons)
    assert reasons, decision.block_reason

    # Live: the stream brings it without a reload.
    row = page.locator(f'#decisions-body tr[data-decision-id="{decision.decision_id}"]')
    await expect(row).to_have_attribute("data-outcome", "blocked", timeout=WAIT_MS)
    await expect(row.locator('[data-col="blocked"]')).to_have_text(f"context: {decision.block_reason}")
    await open_decision(page, decision.decision_id)
    block = page.locator("#decision-block")
    await expect(block).to_be_visible()
    await expect(block.locator("strong")).to_have_text("Blocked at context")
    assert await block.locator("li").all_inner_texts() == reasons
    await expect(page.locator("#decision-outcome")).to_have_attribute("data-outcome", "blocked")
    stages = page.locator("#decision-stages li.stage")
    statuses = await stages.evaluate_all("ls => ls.map(l => l.dataset.status)")
    assert statuses == ["blocked"] + ["skipped"] * 7
    await expect(page.locator("#decision-conviction")).to_contain_text("blocked before stage 4")
    await page.locator("#decision-view").screenshot(path=artifact("advisor-blocked-decision"))

    # Recorded: a reload of its URL lists it from ListDecisions and opens it again.
    await page.reload()
    await expect(page.locator("#decision-view")).to_have_attribute("data-decision-id", decision.decision_id)
    await expect(page.locator("#decision-block li").first).to_have_text(reasons[0], timeout=WAIT_MS)
    await expect(row).to_be_attached(timeout=WAIT_MS)


async def test_an_unknown_decision_is_an_error_shown_in_the_page(
    page: Page, mesh: StudioMesh, api_key: str, advisor: ServiceProcess
) -> None:
    await open_advisor(page, mesh, api_key)
    await page.goto(f"{mesh.url}/#/advisor/no-such-decision")
    status = page.locator("#decision-view .status")
    await expect(status).to_have_text("not found: no decision 'no-such-decision'", timeout=WAIT_MS)
    await expect(status).to_have_attribute("data-tone", "error")
    await expect(page.locator("#decision-title")).to_have_count(0)


async def test_the_reliability_diagram_draws_each_regimes_bins_before_and_after_calibration(
    page: Page, mesh: StudioMesh, api_key: str, advisor: ServiceProcess
) -> None:
    calibration = await _calibration(advisor)
    regimes = {r.regime: r for r in calibration.regimes}
    assert "fallback" in regimes
    await open_advisor(page, mesh, api_key)
    await expect(page.locator("#calibration .status")).to_have_text("live", timeout=WAIT_MS)
    options = await page.locator("#regime-select option").evaluate_all("os => os.map(o => o.value)")
    assert options == [r.regime for r in calibration.regimes]
    for name in ("fallback", next(r for r in regimes if r != "fallback")):
        await page.select_option("#regime-select", name)
        regime = regimes[name]
        diagram = page.locator("#reliability-diagram")
        await expect(diagram).to_have_attribute("data-regime", name)
        for series, bins in (("before", regime.bins_before), ("after", regime.bins_after)):
            filled = [b for b in bins if b.count > 0]
            assert filled, f"{name} has {series} bins"
            dots = diagram.locator(f"circle.bin.{series}[data-count]")
            await expect(dots).to_have_count(len(filled))
            counts = await dots.evaluate_all("cs => cs.map(c => Number(c.dataset.count))")
            assert counts == [b.count for b in filled]
        brier = f"Brier {regime.brier_before:.4f} → {regime.brier_after:.4f}"
        await expect(page.locator('#calibration-stats [data-stat="brier"]')).to_have_text(brier)
        ece = f"ECE {regime.ece_before:.4f} → {regime.ece_after:.4f}"
        await expect(page.locator('#calibration-stats [data-stat="ece"]')).to_have_text(ece)
    # A dot sits at its bin's (mean prediction, observed rate): a better-calibrated point lies
    # nearer the diagonal, so the drawing is checked against the numbers, not only counted.
    first = page.locator("#reliability-diagram circle.bin.after[data-count]").first
    box = await first.evaluate("c => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]")
    figures = "c => [Number(c.dataset.predicted), Number(c.dataset.observed)]"
    predicted, observed = await first.evaluate(figures)
    assert box == pytest.approx([44 + predicted * 300, 12 + (1 - observed) * 300], abs=0.01)
    await page.locator("#calibration").screenshot(path=artifact("advisor-reliability-diagram"))
