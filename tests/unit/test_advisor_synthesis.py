"""Advisor stage 6 on its own: the request, the answer's schema checks, each hallucination
check, the discard/down-weight policy and the deterministic synthesis."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.advisor_support import signal, stage_outputs
from trademesh.core.advisor.engine.answer import ANSWER_FIELDS, ANSWER_SCHEMA, RESPONSE_FORMAT
from trademesh.core.advisor.engine.checks import check_answer
from trademesh.core.advisor.engine.config import SynthesisConfig
from trademesh.core.advisor.engine.request import StageOutputs, build_request
from trademesh.core.advisor.engine.synthesis import SynthesisSource, deterministic_synthesis, from_answer
from trademesh.core.domain.contracts.signal import Direction

CFG = SynthesisConfig()


@pytest.fixture(scope="module")
def stages() -> StageOutputs:
    return stage_outputs()


@pytest.fixture(scope="module")
def request_json(stages: StageOutputs) -> str:
    return build_request("d-1", stages, 20).to_json()


def answer(**fields: object) -> str:
    base: dict[str, object] = {
        "bias": "long",
        "confidence": 0.7,
        "reasoning": "Momentum signal with rule score 0.7 and a spread of 0.0196% in a trend_up regime.",
        "size_multiplier": 1.2,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def checks_of(text: str, request_json: str, direction: Direction = Direction.LONG) -> list[str]:
    return [f.check for f in check_answer(text, request_json, direction, CFG).flags]


def test_the_schema_names_every_field_and_the_response_format_wraps_it() -> None:
    assert ANSWER_SCHEMA["required"] == list(ANSWER_FIELDS)
    assert ANSWER_SCHEMA["additionalProperties"] is False
    assert RESPONSE_FORMAT["json_schema"]["schema"] is ANSWER_SCHEMA
    json.dumps(RESPONSE_FORMAT)  # serialisable as it is


def test_the_request_is_canonical_json_of_the_context_and_stage_outputs(stages: StageOutputs) -> None:
    request = build_request("d-1", stages, 3)
    payload = json.loads(request.to_json())
    assert set(payload) == {
        "decision_id", "signal", "market", "bars", "account", "quality", "evaluation", "conviction", "regime",
        "calibration",
    }  # fmt: skip
    assert len(payload["bars"]) == 3
    assert payload["market"]["bid"] == "101.99" and payload["market"]["spread_pct"] == "0.019608"
    assert request.to_json() == build_request("d-1", stages, 3).to_json()


def test_a_good_answer_raises_no_flag(request_json: str) -> None:
    parsed = check_answer(answer(), request_json, Direction.LONG, CFG)
    assert parsed.flags == ()
    assert (parsed.bias, parsed.confidence, parsed.size_multiplier) == (Direction.LONG, 0.7, Decimal("1.2"))


def test_invalid_json_is_flagged(request_json: str) -> None:
    assert checks_of("{not json", request_json) == ["invalid_json"]
    assert checks_of("[1, 2]", request_json) == ["invalid_json"]


@pytest.mark.parametrize("missing", ["bias", "confidence", "reasoning", "size_multiplier"])
def test_each_missing_field_is_flagged(missing: str, request_json: str) -> None:
    flags = check_answer(answer(**{missing: None}), request_json, Direction.LONG, CFG).flags
    assert [(f.check, f.field) for f in flags] == [("missing_field", missing)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("bias", "up"), ("confidence", 1.5), ("confidence", "high"), ("size_multiplier", 2.5),
     ("size_multiplier", -0.1), ("confidence", True), ("reasoning", 42)],
)  # fmt: skip
def test_each_out_of_range_field_is_flagged(field: str, value: object, request_json: str) -> None:
    flags = check_answer(answer(**{field: value}), request_json, Direction.LONG, CFG).flags
    assert [(f.check, f.field) for f in flags] == [("out_of_range", field)]


def test_unexpected_fields_are_flagged(request_json: str) -> None:
    assert checks_of(answer(leverage=10), request_json) == ["unexpected_field"]


def test_an_invented_number_is_flagged_and_grounded_ones_are_not(request_json: str) -> None:
    text = answer(reasoning="Bid 101.99, ask 102.01, spread 0.02%, RSI 1.0 over 14 bars; target 108.50 soon.")
    flags = check_answer(text, request_json, Direction.LONG, CFG).flags
    assert [(f.check, f.detail) for f in flags] == [
        ("invented_number", "108.50 appears nowhere in the context")
    ]


def test_a_number_quoted_from_a_tool_result_is_grounded_and_one_in_neither_is_not(request_json: str) -> None:
    text = answer(reasoning="The ticker tool shows last 65001.25 on 182.75 BTC; I expect 70123.5.")
    assert "65001.25" not in request_json and "182.75" not in request_json
    without = check_answer(text, request_json, Direction.LONG, CFG).flags
    assert [f.detail for f in without] == [
        f"{n} appears nowhere in the context" for n in ("65001.25", "182.75", "70123.5")
    ]
    results = ('{"last": "65001.25"}', '{"volume_24h": "182.75"}')
    flags = check_answer(text, request_json, Direction.LONG, CFG, results).flags
    assert [(f.check, f.detail) for f in flags] == [
        ("invented_number", "70123.5 appears nowhere in the context or the tool results")
    ]


def test_an_id_read_as_a_huge_number_grounds_only_itself_and_overflows_nothing(request_json: str) -> None:
    # "5e1234567" inside a hex id reads as 5 x 10^1234567: past Decimal's range, so comparing
    # it (times 100, minus a figure) raised decimal.Overflow and ended a backtest run.
    results = ('{"order_id": "a5e1234567fb"}',)
    quoted = answer(reasoning="Order a5e1234567fb is open at 101.99.")
    assert check_answer(quoted, request_json, Direction.LONG, CFG, results).flags == ()
    other = answer(reasoning="Order a5e1234568fb is open at 101.99.")
    flags = check_answer(other, request_json, Direction.LONG, CFG, results).flags
    assert [(f.check, f.detail) for f in flags] == [
        ("invented_number", "5E+1234568 appears nowhere in the context or the tool results")
    ]


def test_a_rounded_quote_and_a_percent_of_a_ratio_are_grounded(request_json: str) -> None:
    # rule score 0.7 -> "70%"; the regime's +DI 11.111111 -> "11.1"; small integers pass.
    text = answer(reasoning="Rules agree at 70% and +DI reads 11.1 over the last 3 bars.")
    assert checks_of(text, request_json) == []


def test_a_contradicting_bias_without_a_reason_is_flagged(request_json: str) -> None:
    text = answer(bias="short", reasoning="Go short.")
    assert checks_of(text, request_json) == ["contradicting_direction"]


def test_a_contradicting_bias_with_a_stated_reason_is_not_flagged(request_json: str) -> None:
    text = answer(bias="short", reasoning="Short because RSI is 1.0: the move is overextended.")
    assert checks_of(text, request_json) == []


def test_flat_is_not_a_contradiction(request_json: str) -> None:
    assert checks_of(answer(bias="flat", reasoning="Stand aside."), request_json) == []


def test_an_accepted_answer_moves_the_conviction_by_its_weight(
    stages: StageOutputs, request_json: str
) -> None:
    parsed = check_answer(answer(confidence=0.9, size_multiplier=1.6), request_json, Direction.LONG, CFG)
    s = from_answer(stages, parsed, "m1", CFG)
    c = stages.calibration.calibrated
    assert s.source is SynthesisSource.LLM and s.model == "m1"
    assert s.llm_weight == 0.3
    assert s.final_conviction == pytest.approx(0.7 * c + 0.3 * 0.9)
    assert s.size_multiplier == Decimal("1.60")


def test_an_opposing_answer_lowers_the_conviction(stages: StageOutputs, request_json: str) -> None:
    text = answer(bias="short", confidence=0.8, reasoning="Short since RSI is 1.0.")
    s = from_answer(stages, check_answer(text, request_json, Direction.LONG, CFG), "m1", CFG)
    assert s.agreement == pytest.approx(0.2)
    assert s.final_conviction == pytest.approx(0.7 * stages.calibration.calibrated + 0.3 * 0.2)


def test_a_down_weighted_answer_counts_half_and_its_size_moves_half_as_far(
    stages: StageOutputs, request_json: str
) -> None:
    text = answer(confidence=0.9, size_multiplier=1.6, reasoning="Target 108.50.")
    s = from_answer(stages, check_answer(text, request_json, Direction.LONG, CFG), "m1", CFG)
    assert [(a.flag.check, a.action) for a in s.flags] == [("invented_number", "downweight")]
    assert s.llm_weight == pytest.approx(0.15)
    assert s.size_multiplier == Decimal("1.30")


def test_a_discarded_answer_falls_back_to_the_deterministic_synthesis(
    stages: StageOutputs, request_json: str
) -> None:
    text = answer(bias="short", reasoning="Go short.")
    s = from_answer(stages, check_answer(text, request_json, Direction.LONG, CFG), "m1", CFG)
    assert s.source is SynthesisSource.DETERMINISTIC
    assert s.fallback_reason == "answer from m1 discarded: contradicting_direction"
    assert [(a.flag.check, a.action) for a in s.flags] == [("contradicting_direction", "discard")]


def test_the_deterministic_synthesis_follows_the_calibrated_conviction(stages: StageOutputs) -> None:
    s = deterministic_synthesis(stages, "llm disabled")
    c = stages.calibration.calibrated  # 0.761538462
    assert (s.bias, s.confidence, s.final_conviction, s.llm_weight) == (Direction.LONG, c, c, 0.0)
    assert s.size_multiplier == Decimal("1.50")  # 2c capped at 1.5
    assert s.reasoning.startswith("Deterministic synthesis (llm disabled): long signal from momentum;")


def test_a_weak_deterministic_synthesis_is_flat_and_small() -> None:
    weak = stage_outputs(signal(conviction="0.2"))
    s = deterministic_synthesis(weak, "llm disabled")
    c = weak.calibration.calibrated
    assert c < 0.5
    assert s.bias is Direction.FLAT
    assert s.size_multiplier == max(Decimal("0.5"), Decimal(repr(2 * c)).quantize(Decimal("0.01")))


def test_the_deterministic_reasoning_quotes_only_numbers_in_the_context(stages: StageOutputs) -> None:
    s = deterministic_synthesis(stages, "llm disabled")
    request_json = build_request("d-1", stages, 20).to_json()
    text = json.dumps({"bias": "long", "confidence": 0.5, "reasoning": s.reasoning, "size_multiplier": 1})
    assert checks_of(text, request_json) == []
