"""Engine values as the API's messages: the catalog, patches, signals with exact decimal text,
parameter values both ways, change events."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.detector_support import engine
from trademesh.core.detector.convert import (
    catalog_to_pb,
    change_to_pb,
    decimal_text,
    param_value_to_pb,
    patch_to_pb,
    position_to_pb,
    python_value,
    signal_to_pb,
)
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.changes import ParamSet, StateChanged
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.module import ParamKind
from trademesh.core.detector.engine.outputs import EmittedSignal, PositionRequest
from trademesh.core.detector.engine.values import RuleValue
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.platform.errors import InvalidArgument
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.signal.v1 import signal_pb2 as sig


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),  # that IS the float's value
        (3.0, "3"),
        (1e-7, "0.0000001"),
        (1.5e20, "150000000000000000000"),
        (-2.25, "-2.25"),
        (0.0, "0"),
        (float("nan"), ""),
    ],
)
def test_decimal_text_is_the_shortest_exact_decimal(value: float, text: str) -> None:
    assert decimal_text(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_decimal_text_reads_back_as_the_same_float(value: float) -> None:
    text = decimal_text(value)
    assert "e" not in text.lower()
    assert float(Decimal(text)) == value


@given(
    st.one_of(
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False),
        st.text(max_size=50),
    )
)
def test_param_values_round_trip(value: int | float | bool | str) -> None:
    wire = pb.ParamValue.FromString(param_value_to_pb(value).SerializeToString())
    back = python_value(wire, "params.x")
    assert back == value and type(back) is type(value)


def test_a_whole_float_is_an_int_for_an_int_param_and_an_unset_value_is_refused() -> None:
    assert python_value(pb.ParamValue(float_value=12.0), "p", ParamKind.INT) == 12
    assert python_value(pb.ParamValue(float_value=12.5), "p", ParamKind.INT) == 12.5
    with pytest.raises(InvalidArgument) as caught:
        python_value(pb.ParamValue(), "params.period")
    assert caught.value.violations[0].field == "params.period"


def test_the_catalog_lists_every_type_with_ports_params_and_bounds() -> None:
    types = {t.type: t for t in catalog_to_pb(Catalog.builtin())}
    ema = types["ema"]
    assert ema.category == pb.MODULE_CATEGORY_INDICATOR and not ema.custom
    assert [(p.name, p.type) for p in ema.inputs] == [("value", pb.PORT_TYPE_NUMBER)]
    period = ema.params[0]
    assert (period.name, period.kind, period.default_value.int_value) == ("period", pb.PARAM_KIND_INT, 20)
    assert (period.minimum, period.maximum) == (1, 10000)
    score = types["weighted_score"]
    direction = next(p for p in score.params if p.name == "direction")
    assert direction.kind == pb.PARAM_KIND_CHOICE and "short" in direction.choices
    assert not direction.HasField("minimum")
    assert types["cooldown"].time_driven
    assert types["signal"].inputs[1].optional  # gate


def test_a_patch_converts_with_params_cables_order_and_market() -> None:
    eng = engine()
    patch = eng.create_patch("p", "s", 1, venue="sim", symbol="BTC/USDT", name="P", description="d")
    patch.add_module("t", "trades", {}, 2)
    patch.add_module("f", "trade_fields", {}, 3)
    patch.add_module("e", "ema", {"period": 5}, 4)
    patch.connect("t.trade -> f.trade", 5)
    patch.connect("f.price -> e.value", 6)
    graph = patch_to_pb(patch)
    assert (graph.patch_id, graph.name, graph.description, graph.version) == ("p", "P", "d", 5)
    assert graph.state == pb.PATCH_STATE_DRAFT and graph.strategy_id == "s"
    assert [(m.venue, m.symbol) for m in graph.markets] == [("sim", "BTC/USDT")]
    modules = {m.module_id: m for m in graph.modules}
    assert modules["e"].params["period"].int_value == 5
    assert modules["t"].params["venue"].text_value == "sim"  # took the patch's
    assert [(c.from_module, c.to_port, c.type) for c in graph.cables] == [
        ("f", "value", pb.PORT_TYPE_NUMBER),
        ("t", "trade", pb.PORT_TYPE_TRADE),
    ]
    assert list(graph.evaluation_order) == ["t", "f", "e"]
    assert graph.warmup_bars == 5 and not graph.HasField("error")


def _signal(conviction: float, score: float, weight: float) -> EmittedSignal:
    rules = (
        RuleValue("trend", weight, True, True),
        RuleValue("rsi", 1.0, 71.3, False),
        RuleValue("x", 1, None, False),
    )
    return EmittedSignal("id", "trend", "trend/sim/BTC", 3, "emit", "sim", "BTC/USDT", Direction.LONG,
                         conviction, score, 3.0, rules, 10, 20)  # fmt: skip


def test_a_signal_has_exact_decimal_strings_and_its_attribution() -> None:
    message = signal_to_pb(_signal(0.1 + 0.2, 0.7, 0.1))
    assert (message.conviction, message.score, message.threshold) == ("0.30000000000000004", "0.7", "3")
    assert message.direction == sig.DIRECTION_LONG and message.patch_version == 3
    assert [(r.name, r.weight, r.value, r.fired) for r in message.rules] == [
        ("trend", "0.1", "true", True),
        ("rsi", "1", "71.3", False),
        ("x", "1", "", False),
    ]
    assert (message.ts_event_ns, message.ts_signal_ns, message.strategy_id) == (10, 20, "trend")


def test_a_position_request_keeps_direction_for_open_and_fraction_for_reduce() -> None:
    def request(action: str) -> sig.PositionRequest:
        made = PositionRequest(
            "r", "s", "p", 2, "pos", "sim", "BTC/USDT", action, Direction.SHORT, 0.25, 1, 2
        )
        return position_to_pb(made)

    assert request("open").direction == sig.DIRECTION_SHORT and request("open").fraction == ""
    reduce = request("reduce")
    assert reduce.action == sig.POSITION_ACTION_REDUCE and reduce.fraction == "0.25"
    assert reduce.direction == sig.DIRECTION_UNSPECIFIED


def test_changes_become_events_with_detail_and_state() -> None:
    event = change_to_pb(ParamSet("p", 4, 99, "fast", "period", 12), PatchState.ACTIVE)
    assert (event.kind, event.version, event.detail, event.ts_ns) == (
        pb.PATCH_EVENT_KIND_PARAMS_SET,
        4,
        "fast.period = 12",
        99,
    )
    assert event.state == pb.PATCH_STATE_ACTIVE
    moved = change_to_pb(StateChanged("p", 4, 100, "draft", "active"), PatchState.DRAFT)
    assert moved.state == pb.PATCH_STATE_ACTIVE and moved.detail == "draft -> active"
