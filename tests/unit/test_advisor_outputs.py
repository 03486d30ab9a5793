"""Each stage's output JSON in a Decision (trademesh.core.advisor.outputs): made by the JSON encoder in one
walk, the same text as the JSON of plain()'s values, on decisions through every path."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.advisor_support import NOW_NS, book, context, signal
from trademesh.core.advisor.defaults import default_calibration, default_model
from trademesh.core.advisor.engine.config import AdvisorConfig, SynthesisConfig, ValidationConfig
from trademesh.core.advisor.engine.context import GapMarker, OpenOrder
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision
from trademesh.core.advisor.engine.telemetry import Stage
from trademesh.core.advisor.outputs import KeptParts, plain, stage_json, stage_outputs, stage_texts
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.domain.model import Position, Side

D = Decimal
_LENIENT = ValidationConfig(min_risk_reward=D(0), min_conviction=0.0, cap_target_at_swing=False)


def _decision(direction: Direction = Direction.LONG, strict: bool = False, **changes: Any) -> Decision:
    validation = ValidationConfig() if strict else _LENIENT
    config = AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=False), validation=validation)
    out = AdvisorCore(config, default_model(), default_calibration()).on_signal(
        signal(direction), context(**changes), NOW_NS
    )
    assert isinstance(out, Decision)
    return out


_CASES: dict[str, Callable[[], Decision]] = {
    "intent": lambda: _decision(),
    "short": lambda: _decision(Direction.SHORT),
    "blocked at validation": lambda: _decision(strict=True),
    "blocked at the gate": lambda: _decision(book=None),
    "another market": lambda: _decision(symbol="ETH/USDT"),
    "flat, closing": lambda: _decision(
        Direction.FLAT, positions=(Position("BTC/USDT", D("0.25"), D("100")),)
    ),
    "with orders and gaps": lambda: _decision(
        open_orders=(OpenOrder("o1", Side.BUY, D("101"), D("0.5")), OpenOrder("o2", Side.SELL, None, D("1"))),
        gaps=(GapMarker(NOW_NS - 10**9, NOW_NS, 2, False),),
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_each_stages_json_is_that_of_its_plain_values(case: str) -> None:
    decision = _CASES[case]()
    outputs = stage_outputs(decision)
    assert len(outputs) == 8
    for output in outputs.values():
        expected = json.dumps(plain(output), sort_keys=True, default=str)
        assert stage_json(output) == expected


def test_the_calibrations_own_regime_label_stands_over_the_regime() -> None:
    decision = _decision()
    assert decision.regime is not None and decision.calibration is not None
    made = json.loads(stage_json(stage_outputs(decision)[Stage.CALIBRATION]))
    assert made["regime"] == decision.calibration.regime
    assert made["calibrated"] == decision.calibration.calibrated


def test_kept_parts_give_the_same_json_and_are_made_again_for_another_object() -> None:
    kept = KeptParts()
    first = _decision()
    assert stage_texts(first, kept) == stage_texts(first)
    again = _decision()  # the same instrument object, new book and bars objects
    assert stage_texts(again, kept) == stage_texts(again)
    moved = _decision(book=book(bid="101.5", ask="101.6"))
    texts = stage_texts(moved, kept)
    assert texts == stage_texts(moved) and '"bid": "101.5"' in texts[Stage.CONTEXT]
    for case in _CASES.values():
        decision = case()
        assert stage_texts(decision, kept) == stage_texts(decision)
