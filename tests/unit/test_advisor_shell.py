"""The advisor's service shell without processes: its settings file, the contract's messages
made from the core's decisions and telemetry, signals checked field by field, the model
library, and the LLM transport's replies as the core's events."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.advisor_support import NOW_NS, context, signal
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.config import load_engine_config, with_overrides
from trademesh.core.advisor.convert import decision_to_pb, event_to_pb, ratio, signal_from_pb, signal_to_pb
from trademesh.core.advisor.defaults import default_calibration, default_model
from trademesh.core.advisor.engine.answer import AttemptOutcome, FailureReason, LlmAnswer, LlmFailure
from trademesh.core.advisor.engine.config import AdvisorConfig, EntryMode, SynthesisConfig, ValidationConfig
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision
from trademesh.core.advisor.engine.telemetry import (
    KIND_FIELDS,
    JsonValue,
    Subject,
    TelemetryEvent,
    TelemetryKind,
)
from trademesh.core.advisor.library import ModelLibrary, calibration_to_pb, load_calibration, serving_model
from trademesh.core.advisor.llm.events import TransportEvent, TransportEventKind
from trademesh.core.advisor.llm.reply import LlmReply
from trademesh.core.advisor.llm.tools import ToolCallRecord
from trademesh.core.advisor.synthesizer import answer_from_trace, answer_of, shell_events, trace_of
from trademesh.core.advisor.synthetic import regime_bars
from trademesh.core.advisor.training import train_model
from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.signal.v1 import signal_pb2 as sig

K = TransportEventKind


def _decide(llm: bool = False) -> tuple[AdvisorCore, Decision, list[TelemetryEvent]]:
    """A decision that goes through every stage to its intent (a lenient validation)."""
    lenient = ValidationConfig(min_risk_reward=Decimal(0), min_conviction=0.0, cap_target_at_swing=False)
    config = AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=llm), validation=lenient)
    core = AdvisorCore(config, default_model(), default_calibration())
    out = core.on_signal(signal(), context(), NOW_NS)
    assert isinstance(out, Decision)
    return core, out, core.take_telemetry()


# ---------------------------------------------------------------- the settings file


def test_a_settings_file_sets_each_section_with_its_types(tmp_path: Path) -> None:
    path = tmp_path / "advisor.toml"
    path.write_text(
        '[validation]\nmax_spread_ratio = "0.002"\nmin_risk_reward = 1.5\ncap_target_at_swing = false\n'
        'fee_rate = "0.0005"\nmin_distance_ticks = 2\n'
        '[intent]\nentry = "market"\n[synthesis]\ndiscard = ["invalid_json"]\ndeadline_ms = 900\n'
    )
    config = load_engine_config(path)
    assert config.validation.max_spread_ratio == Decimal("0.002")
    assert (config.validation.fee_rate, config.validation.min_distance_ticks) == (Decimal("0.0005"), 2)
    assert load_engine_config(None).validation.fee_rate is None  # unset: the venue's own rates
    assert config.validation.min_risk_reward == Decimal("1.5") and not config.validation.cap_target_at_swing
    assert config.intent.entry is EntryMode.MARKET
    assert config.synthesis.discard == frozenset({"invalid_json"}) and config.synthesis.deadline_ms == 900
    flags = with_overrides(config, validation__min_risk_reward=Decimal("2"), synthesis__deadline_ms=None)
    assert flags.validation.min_risk_reward == Decimal("2") and flags.synthesis.deadline_ms == 900


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[validation]\nmin_risk_rewrd = 1\n", "validation.min_risk_rewrd"),
        ("[validaton]\n", "validaton"),
        ('[validation]\natr_bars = "14"\n', "validation.atr_bars"),
        ('[validation]\nmin_risk_reward = "one"\n', "validation.min_risk_reward"),
        ('[intent]\nentry = "now"\n', "intent.entry"),
        ("[validation]\nmin_risk_reward = 1000\n", "validation.min_risk_reward"),
        ('[validation]\nfee_rate = "0.5"\n', "validation.fee_rate"),
        ("[validation]\nmin_distance_ticks = -1\n", "validation.min_distance_ticks"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "advisor.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument) as error:
        load_engine_config(path)
    assert [v.field for v in error.value.violations] == [field]


# ---------------------------------------------------------------- signals


def test_a_signal_survives_the_round_trip_through_the_contract() -> None:
    original = signal()
    assert signal_from_pb(signal_to_pb(original)) == original


def test_every_bad_field_of_a_signal_is_named_under_the_prefix() -> None:
    message = sig.Signal(conviction="1.5", score="x", rules=[sig.RuleAttribution(name="r", weight="?")])
    with pytest.raises(InvalidArgument) as error:
        signal_from_pb(message, "signal.")
    assert {v.field for v in error.value.violations} == {
        "signal.direction", "signal.conviction", "signal.score", "signal.rules[0].weight",
    }  # fmt: skip
    message = sig.Signal(direction=sig.DIRECTION_LONG, conviction="0.5")
    with pytest.raises(InvalidArgument) as error:
        signal_from_pb(message, "signal.")
    assert {v.field for v in error.value.violations} == {
        "signal.signal_id", "signal.venue", "signal.symbol", "signal.strategy_id",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"), [(0.0, "0"), (-0.0, "0"), (1.0, "1"), (0.1234567891, "0.123456789"), (1e-12, "0")]
)
def test_ratios_are_plain_decimal_strings(value: float, text: str) -> None:
    assert ratio(value) == text and ratio(None) == ""


# ---------------------------------------------------------------- decisions and telemetry


def test_a_decision_becomes_the_contracts_with_every_stage_and_its_intent() -> None:
    _, decision, events = _decide()
    message = decision_to_pb(decision, events, model_version="m1")
    assert [s.stage for s in message.stages] == list(range(1, 9))
    assert message.outcome == am.OUTCOME_INTENT and message.model_version == "m1"
    synthesis = message.stages[am.STAGE_SYNTHESIS - 1]
    assert synthesis.status == am.STAGE_STATUS_DEGRADED and synthesis.reasons == ["llm disabled"]
    assert message.deterministic_synthesis and message.synthesis.source == am.SYNTHESIS_SOURCE_DETERMINISTIC
    quality = json.loads(message.stages[am.STAGE_MARKET_QUALITY - 1].output_json)
    assert quality["score"] == decision.quality.score if decision.quality else False
    intent = message.intent
    assert decision.intent is not None and intent.intent_id == decision.intent.intent_id
    assert Decimal(intent.size) == decision.intent.size and intent.entry_type != 0
    # Its signal's time, for the inspector to check it as of then.
    assert intent.ts_signal_ns == decision.signal.ts_ns == message.signal.ts_signal_ns > 0
    assert message.conviction.raw and message.conviction.calibrated and message.conviction.regime


def test_without_stage_outputs_only_the_stages_summaries_and_output_json_are_left_out() -> None:
    _, decision, events = _decide()
    full = decision_to_pb(decision, events, model_version="m1")
    lean = decision_to_pb(decision, events, model_version="m1", stage_outputs=False)
    assert all(not s.summary and not s.output_json for s in lean.stages)
    assert all(s.summary and s.output_json for s in full.stages)
    for stage in full.stages:
        stage.ClearField("summary")
        stage.ClearField("output_json")
    assert lean == full


def test_a_blocked_stage_says_so_and_the_later_ones_are_skipped() -> None:
    core = AdvisorCore(
        AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=False)), None, default_calibration()
    )
    decision = core.on_signal(signal(), context(book=None), NOW_NS)
    assert isinstance(decision, Decision)
    message = decision_to_pb(decision, core.take_telemetry())
    statuses = {s.stage: s.status for s in message.stages}
    assert message.outcome == am.OUTCOME_BLOCKED and message.blocked_stage == am.STAGE_MARKET_QUALITY
    assert statuses[am.STAGE_MARKET_QUALITY] == am.STAGE_STATUS_BLOCKED
    assert statuses[am.STAGE_INTENT] == am.STAGE_STATUS_SKIPPED and "no order book" in message.block_reason


def test_every_telemetry_kind_has_a_contract_kind_and_keeps_its_name() -> None:
    _, _, events = _decide()
    converted = [event_to_pb(e) for e in events]
    assert all(c.kind != am.TELEMETRY_EVENT_KIND_UNSPECIFIED for c in converted)
    assert [c.fields["name"] for c in converted] == [e.kind.value for e in events]
    for kind in TelemetryKind:  # none is left unmapped, not only those this decision made
        assert event_to_pb(_event_of(kind)).kind != am.TELEMETRY_EVENT_KIND_UNSPECIFIED
    finished = [c for c in converted if c.kind == am.TELEMETRY_EVENT_KIND_STAGE_FINISHED]
    assert len(finished) == 8 and all(c.fields["outcome"] for c in finished)


def test_an_events_fields_are_text_each_by_its_type() -> None:
    values: dict[str, JsonValue] = {
        "score": 0.5, "threshold": 1, "passed": True, "penalties": {"b": 0.25, "a": [1, None]},
        "reasons": None,
    }  # fmt: skip
    event = TelemetryEvent("e", 1, TelemetryKind.QUALITY_SCORE, NOW_NS, None, Subject(), values)
    fields = dict(event_to_pb(event).fields)
    assert fields == {
        "score": "0.5", "threshold": "1", "passed": "true", "penalties": '{"a":[1,null],"b":0.25}',
        "reasons": "", "name": "quality_score",
    }  # fmt: skip
    assert event_to_pb(event).value == "0.5"


def _event_of(kind: TelemetryKind) -> TelemetryEvent:
    return TelemetryEvent("e", 1, kind, NOW_NS, None, Subject(), {name: None for name in KIND_FIELDS[kind]})


# ---------------------------------------------------------------- the LLM's replies as events


def _reply(ok: bool, events: list[TransportEvent], model: str | None = "b") -> LlmReply:
    return LlmReply(
        ok=ok, model=model if ok else None, content='{"bias": "long"}' if ok else None, finish_reason=None,
        tool_calls=(), latency_s=0.4, attempts=len(events), events=tuple(events),
        failure=None if ok else "every model failed",
    )  # fmt: skip


def test_an_answer_after_failed_attempts_carries_them_to_the_core() -> None:
    events = [
        TransportEvent(K.LLM_REQUEST, 0.0, "a", 1),
        TransportEvent(K.LLM_TIMEOUT, 0.2, "a", 1, "no answer", 0.2),
        TransportEvent(K.LLM_RETRY, 0.2, "a", 1, "retry", None, {"delay_s": "0.1"}),
        TransportEvent(K.LLM_RESPONSE, 0.4, "b", 2, "", 0.1),
    ]
    answer = answer_of("d1", _reply(True, events), 2)
    assert isinstance(answer, LlmAnswer) and answer.model == "b" and answer.latency_ms == 400
    assert [(a.model, a.outcome) for a in answer.attempts] == [("a", AttemptOutcome.TIMEOUT)]
    shell = shell_events("d1", signal(), _reply(True, events), NOW_NS)
    assert [e.kind for e in shell] == [am.TELEMETRY_EVENT_KIND_LLM_RETRY] and shell[0].fields[
        "delay_s"
    ] == "0.1"


def test_an_answer_carries_the_tool_results_its_model_read_and_its_trace_gives_it_back() -> None:
    events = [
        TransportEvent(K.LLM_REQUEST, 0.0, "a", 1),
        TransportEvent(K.LLM_ERROR, 0.1, "a", 2, "HTTP 500", 0.05),
        TransportEvent(K.LLM_REQUEST, 0.2, "b", 3),
        TransportEvent(K.LLM_RESPONSE, 0.4, "b", 3, "", 0.123),
    ]
    calls = (
        ToolCallRecord("a", "ticker", {}, 20, True, "", '{"last": "1.5"}'),  # a's conversation, lost
        ToolCallRecord("b", "ticker", {"symbol": "BTC/USDT"}, 40_000, True, "", '{"last": "65001.25"'),
        ToolCallRecord("b", "book", {}, 0, False, "down", '{"error": "down"}'),
    )
    reply = dataclasses.replace(_reply(True, events), tool_calls=calls, latency_s=0.4567)
    answer = answer_of("d1", reply, 2)
    assert isinstance(answer, LlmAnswer)
    assert answer.tool_results == ('{"last": "65001.25"', '{"error": "down"}')
    trace = am.LlmTrace.FromString(trace_of(reply, ("a", "b")).SerializeToString())
    assert [c.result for c in trace.tool_calls] == [c.content for c in calls]
    assert answer_from_trace("d1", trace) == answer


@pytest.mark.parametrize(
    ("kinds", "models", "reason"),
    [
        ([K.CIRCUIT_SKIP], 1, FailureReason.CIRCUIT_OPEN),
        ([K.LLM_REQUEST, K.LLM_TIMEOUT], 1, FailureReason.TIMEOUT),
        ([K.LLM_REQUEST, K.LLM_ERROR], 1, FailureReason.ERROR),
        ([K.LLM_REQUEST, K.LLM_ERROR, K.LLM_REQUEST, K.LLM_TIMEOUT], 2, FailureReason.ALL_FAILED),
    ],
)
def test_a_failed_synthesis_says_why(
    kinds: list[TransportEventKind], models: int, reason: FailureReason
) -> None:
    events = [TransportEvent(k, 0.0, "a", 1) for k in kinds]
    failure = answer_of("d1", _reply(False, events), models)
    assert isinstance(failure, LlmFailure) and failure.reason is reason


# ---------------------------------------------------------------- the model library


def test_trained_models_are_listed_newest_first_and_found_by_version(tmp_path: Path) -> None:
    library = ModelLibrary(tmp_path)
    shipped = [entry.version for entry in library.shipped.values()]
    assert library.versions() == shipped and library.to_pb(None).shipped_default
    trained = train_model(regime_bars(600, 5), name="x", timeframe="1m", trained_on="test", folds=2)
    meta = json.loads(trained.saved.meta_json) | {"trained_at_ns": 5, "venue": "sim", "symbol": "BTC/USDT"}
    version = trained.artifact.version
    (tmp_path / f"{version}.model.pkl").write_bytes(trained.saved.model_bytes)
    (tmp_path / f"{version}.model.json").write_text(json.dumps(meta))
    assert library.versions() == [version, *shipped]
    model = library.to_pb(version)
    assert (model.report.venue, len(model.report.folds), model.shipped_default) == ("sim", 2, False)
    assert library.load(version).sha256 == trained.artifact.sha256
    with pytest.raises(NotFound):
        library.to_pb("nope")


def test_no_model_serves_bars_of_another_timeframe_than_it_was_trained_on(tmp_path: Path) -> None:
    library = ModelLibrary(tmp_path)
    assert serving_model(library, None, None).version == library.shipped["1m"].version
    assert serving_model(library, None, "1s").version == library.shipped["1s"].version
    assert serving_model(library, library.shipped["1s"].version, None).timeframe == "1s"
    with pytest.raises(InvalidArgument) as mismatch:
        serving_model(library, library.shipped["1m"].version, "1s")
    assert mismatch.value.violations[0].field == "timeframe"
    assert "was trained on 1m bars, not the 1s bars" in str(mismatch.value)
    with pytest.raises(InvalidArgument, match="no model ships for '5m' bars"):
        serving_model(library, None, "5m")
    trained = train_model(regime_bars(600, 5), name="x", timeframe="1m", trained_on="test", folds=2)
    path = tmp_path / f"{trained.artifact.version}.model.json"
    path.with_name(f"{trained.artifact.version}.model.pkl").write_bytes(trained.saved.model_bytes)
    path.write_text(trained.saved.meta_json)
    assert serving_model(library, str(path), "1m").sha256 == trained.artifact.sha256
    with pytest.raises(InvalidArgument, match="trained on 1m bars"):
        serving_model(library, str(path), "1s")


def test_the_advisor_refuses_to_start_on_a_model_of_another_timeframe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from trademesh.core.cli import main

    one_minute = ModelLibrary(None).shipped["1m"].version
    assert main(["advisor", "--timeframe", "1s", "--model", one_minute]) == 2
    said = capsys.readouterr().err
    assert f"model {one_minute} was trained on 1m bars, not the 1s bars" in said


def test_up_runs_the_advisor_on_1m_bars_with_the_1m_model() -> None:
    """Stops and targets on 1m bars' ATR, minutes from the entry, where a round trip's fees are
    paid for (never on 1s bars)."""
    from trademesh.core.advisor.app import Advisor
    from trademesh.core.advisor.command import COMMAND
    from trademesh.core.cli import build_parser
    from trademesh.core.platform.service.command import MeshView

    args = build_parser().parse_args(["advisor", *COMMAND.mesh_args(MeshView(venues=(("sim", "h:1"),)))])
    app = Advisor(COMMAND.config(args))
    assert app.core.model is not None and app.core.model.timeframe == "1m" == app.gatherer.config.timeframe
    assert app.calibration.model_version == app.core.model.version


def test_history_ms_sets_how_old_a_signal_is_decided_as_of_its_time() -> None:
    from trademesh.core.advisor.command import COMMAND
    from trademesh.core.cli import build_parser

    args = build_parser().parse_args(["advisor", "--history-ms", "0"])
    assert COMMAND.config(args).gather.history_ms == 0
    default = build_parser().parse_args(["advisor"])
    assert COMMAND.config(default).gather.history_ms == 5000


def test_each_replica_is_a_consumer_of_its_own_in_the_group(capsys: pytest.CaptureFixture[str]) -> None:
    """`<instance>-<host>` by default (a pod's name is its host's), `--consumer` to name it; a
    dead replica's signals are taken over after `--claim-idle-ms`; a bad value is one line."""
    import socket

    from trademesh.core.advisor.command import COMMAND
    from trademesh.core.cli import build_parser, main

    default = COMMAND.config(build_parser().parse_args(["advisor"]))
    assert (default.group, default.consumer) == ("advisor", f"advisor-{socket.gethostname()}")
    assert default.claim_idle_ms == 60_000
    other = COMMAND.config(build_parser().parse_args(["advisor", "--instance", "adv-2"]))
    assert other.consumer == f"adv-2-{socket.gethostname()}"
    named = build_parser().parse_args(["advisor", "--consumer", "replica-1", "--claim-idle-ms", "1000"])
    assert (COMMAND.config(named).consumer, COMMAND.config(named).claim_idle_ms) == ("replica-1", 1000)
    for bad in (["--consumer", "two words"], ["--consumer", ""], ["--claim-idle-ms", "50"]):
        with pytest.raises(SystemExit) as ended:
            main(["advisor", *bad])
        assert ended.value.code == 2
        said = capsys.readouterr().err.strip()
        assert bad[0] in said and len(said.splitlines()) == 1, said


def test_the_calibration_in_use_is_shown_per_regime_with_its_held_out_scores() -> None:
    shown = calibration_to_pb(load_calibration(None))
    regimes = {r.regime: r for r in shown.regimes}
    assert "fallback" in regimes and all(r.method != am.CALIBRATION_METHOD_UNSPECIFIED for r in shown.regimes)
    fitted = [r for r in shown.regimes if r.samples > 0]
    assert fitted and all(len(r.bins_before) == 10 for r in fitted)
    with pytest.raises(InvalidArgument):
        calibration_to_pb(load_calibration(None), "sideways")


class _Gatherer:
    """The gatherer's part: one context; records the time each decision asked it as of."""

    def __init__(self) -> None:
        self.as_of: list[int | None] = []

    async def gather(self, venue: str, symbol: str, as_of_ns: int | None = None) -> Any:
        self.as_of.append(as_of_ns)
        return context()


async def test_a_signal_is_decided_on_its_context_as_of_its_evaluation_time() -> None:
    """The detector's ts_signal_ns (its evaluation's time, the backtest's decision time), not the
    patch's last event (ts_event_ns): docs/backtest-parity.md, "Parity with live"."""
    from trademesh.core.advisor.decision_journal import DecisionJournal
    from trademesh.core.advisor.runner import Pipeline

    core = AdvisorCore(AdvisorConfig(synthesis=SynthesisConfig(llm_enabled=False)), default_model(),
                       default_calibration())  # fmt: skip
    gatherer = _Gatherer()
    pipeline = Pipeline(core, gatherer, None, DecisionJournal(), max_in_flight=1, clock=lambda: NOW_NS)  # type: ignore[arg-type]
    made = signal()
    await pipeline.decide(made, publish=False, hypothetical=True)
    assert gatherer.as_of == [made.ts_ns] and made.ts_ns != made.ts_event_ns
