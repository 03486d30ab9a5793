"""The patch engine: scoring and attribution, coalescing, isolation, probes, live parameter
changes, lifecycle validation, warm-up, slow modules and determinism."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from tests.detector_support import BASE_NS, FakeTimer, S, engine, trade
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.changes import (
    CableConnected,
    ModuleAdded,
    ParamSet,
    PatchCreated,
    StateChanged,
)
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.graph import Endpoint
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.module import Category, Inputs, Module, ModuleSpec, Outputs, Port
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.detector.engine.values import PortType, RuleValue
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

MS = 1_000_000
Params = Mapping[str, int | float | bool | str]


class Boom(Module):
    """Raises when its input goes above 0."""

    spec = ModuleSpec(
        "boom",
        Category.MATH,
        "raises",
        inputs=(Port("a", PortType.NUMBER),),
        outputs=(Port("out", PortType.NUMBER),),
    )

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        value = inputs["a"]
        if isinstance(value, float) and value > 0:
            raise ZeroDivisionError("the model divided by zero")
        return {"out": value}


class Counter(Module):
    """Counts its steps."""

    spec = ModuleSpec(
        "counter",
        Category.MATH,
        "counts steps",
        inputs=(Port("a", PortType.NUMBER),),
        outputs=(Port("steps", PortType.NUMBER),),
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.steps = 0

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        self.steps += 1
        return {"steps": float(self.steps)}


class Sluggish(Module):
    """Moves the engine's fake timer on by 5 ms in each step, as a slow step would."""

    spec = ModuleSpec("sluggish", Category.MATH, "slow", inputs=(Port("a", PortType.NUMBER),))
    timer: FakeTimer | None = None

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        assert self.timer is not None
        self.timer.ns += 5 * MS
        return {}


def catalog() -> Catalog:
    catalog = Catalog.builtin()
    catalog.register_all([Boom, Counter, Sluggish])
    return catalog


def scored(eng: Engine, patch_id: str = "p", now: int = BASE_NS) -> Patch:
    """trades -> price > 100 (weight 2), size > 5 (weight 1), size / 10 graded (weight 1); threshold 2.5."""
    patch = eng.create_patch(patch_id, "s", now, venue="v", symbol="BTC-USDT")
    modules: list[tuple[str, str, dict[str, object]]] = [
        ("t", "trades", {}),
        ("f", "trade_fields", {}),
        ("high", "compare", {"op": ">", "value": 100.0}),
        ("big", "compare", {"op": ">", "value": 5.0}),
        ("tenth", "divide", {"value": 10.0}),
        (
            "score",
            "weighted_score",
            {
                "threshold": 2.5,
                "weight_1": 2.0,
                "name_1": "price_high",
                "name_2": "size_big",
                "name_3": "size_graded",
            },
        ),
        ("emit", "signal", {}),
    ]
    for module_id, type_name, params in modules:
        patch.add_module(module_id, type_name, params, now)
    for cable in (
        "t.trade -> f.trade",
        "f.price -> high.a",
        "f.size -> big.a",
        "f.size -> tenth.a",
        "high.out -> score.rule_1",
        "big.out -> score.rule_2",
        "tenth.out -> score.level_3",
        "score.signal -> emit.signal",
    ):
        patch.connect(cable, now)
    patch.activate(now)
    return patch


def test_weighted_score_emits_on_reaching_the_threshold_with_each_rule_attributed() -> None:
    eng = engine(catalog())
    scored(eng)
    eng.on_trade("v", trade(BASE_NS + 1, 101.0, 2.0, "1"))
    quiet = eng.evaluate_due(BASE_NS + 2)
    assert quiet.signals == []  # 2 + 0 + 0.2 < 2.5
    eng.on_trade("v", trade(BASE_NS + 3, 101.0, 8.0, "2"))
    [signal] = eng.evaluate_due(BASE_NS + 4).signals
    assert signal.score == pytest.approx(3.8)
    assert signal.conviction == pytest.approx(3.8 / 4)
    assert (signal.threshold, signal.direction, signal.venue, signal.symbol) == (
        2.5,
        Direction.LONG,
        "v",
        "BTC-USDT",
    )
    assert signal.rules == (
        RuleValue("price_high", 2.0, True, True),
        RuleValue("size_big", 1.0, True, True),
        RuleValue("size_graded", 1.0, 0.8, True),
    )
    assert (signal.ts_event_ns, signal.signal_time_ns, signal.patch_version) == (BASE_NS + 3, BASE_NS + 4, 15)
    eng.on_trade("v", trade(BASE_NS + 5, 102.0, 9.0, "3"))
    assert eng.evaluate_due(BASE_NS + 6).signals == []  # still above: no new signal on `rise`
    eng.on_trade("v", trade(BASE_NS + 7, 99.0, 9.0, "4"))
    eng.evaluate_due(BASE_NS + 8)
    eng.on_trade("v", trade(BASE_NS + 9, 102.0, 9.0, "5"))
    assert len(eng.evaluate_due(BASE_NS + 10).signals) == 1  # reached again


def test_conviction_counts_only_connected_rules() -> None:
    eng = engine(catalog())
    patch = eng.create_patch("p", "s", 0)
    patch.add_module("score", "weighted_score", {"weight_1": 3.0, "weight_5": 100.0}, 0)
    score = patch.modules["score"]
    out = score.step(Inputs({"rule_1": True, "level_2": 0.5}, frozenset({"rule_1"})), 0)
    assert out["score"] == pytest.approx(3.5)
    assert out["conviction"] == pytest.approx(3.5 / 4)  # weight_5's rule is not connected
    assert out["triggered"] is True


def test_a_burst_of_events_is_evaluated_once() -> None:
    eng = engine(catalog())
    patch = eng.create_patch("p", "s", 0, venue="v", symbol="BTC-USDT")
    patch.add_module("t", "trades", {}, 0)
    patch.add_module("f", "trade_fields", {}, 0)
    patch.add_module("n", "counter", {}, 0)
    patch.connect("t.trade -> f.trade", 0)
    patch.connect("f.price -> n.a", 0)
    patch.activate(0)
    for i in range(100):
        assert eng.on_trade("v", trade(BASE_NS + i, 100.0 + i, trade_id=str(i))) == 1
    result = eng.evaluate_due(BASE_NS + 100)
    assert result.evaluations == 1
    assert patch.modules["n"].steps == 1  # type: ignore[attr-defined]
    assert patch.values[Endpoint("f", "price")] == 199.0  # the latest trade
    assert eng.evaluate_due(BASE_NS + 101).evaluations == 0  # nothing new


def test_a_raising_module_errors_its_patch_only() -> None:
    eng = engine(catalog())
    good = scored(eng, "good")
    bad = eng.create_patch("bad", "s", 0, venue="v", symbol="BTC-USDT")
    bad.add_module("t", "trades", {}, 0)
    bad.add_module("f", "trade_fields", {}, 0)
    bad.add_module("b", "boom", {}, 0)
    bad.connect("t.trade -> f.trade", 0)
    bad.connect("f.price -> b.a", 0)
    bad.activate(0)
    eng.on_trade("v", trade(BASE_NS, 101.0, 8.0, "1"))
    result = eng.evaluate_due(BASE_NS + 1)
    assert bad.state is PatchState.ERRORED
    assert bad.error == "b (boom): ZeroDivisionError: the model divided by zero"
    assert [(c.patch_id, c.new, c.reason) for c in result.states] == [("bad", "errored", bad.error)]
    assert [s.patch_id for s in result.signals] == ["good"]
    eng.on_trade("v", trade(BASE_NS + 2, 50.0, 1.0, "2"))
    eng.on_trade("v", trade(BASE_NS + 3, 101.0, 8.0, "3"))
    assert eng.evaluate_due(BASE_NS + 4).evaluations == 1  # the good one only
    assert good.state is PatchState.ACTIVE


def test_probes_send_at_most_30_updates_a_second_the_latest_value_winning() -> None:
    eng = engine(catalog())
    patch = scored(eng)
    assert eng.probe("p", "f.price -> high.a", BASE_NS) == "f.price"
    updates = []
    for i in range(2000):  # a trade and an evaluation every ms for 2 s
        now = BASE_NS + i * MS
        eng.on_trade("v", trade(now, 100.0 + i, trade_id=str(i)))
        eng.evaluate_due(now)
        updates += eng.probe_updates(now)
    times = [u.at_ns for u in updates]
    for start in range(0, 2000 - 1000, 7):  # every window of 1 s
        window = [t for t in times if BASE_NS + start * MS <= t < BASE_NS + (start + 1000) * MS]
        assert len(window) <= 30
    assert len(times) >= 59
    assert all(u.value == 100.0 + (u.at_ns - BASE_NS) // MS for u in updates)  # latest at its time
    assert eng.probe_updates(BASE_NS + 3 * S)[0].value == 100.0 + 1999  # the last value still comes
    assert patch.probes[Endpoint("f", "price")].pending is False


def test_a_live_parameter_change_applies_at_the_next_evaluation_and_bumps_the_version() -> None:
    eng = engine(catalog())
    patch = scored(eng)
    eng.on_trade("v", trade(BASE_NS, 150.0, 1.0, "1"))
    eng.evaluate_due(BASE_NS + 1)
    assert patch.values[Endpoint("high", "out")] is True
    version = patch.version
    eng.take_changes()
    patch.set_param("high", "value", 200.0, BASE_NS + 2)
    assert patch.version == version + 1
    assert eng.take_changes() == [ParamSet("p", version + 1, BASE_NS + 2, "high", "value", 200.0)]
    assert patch.values[Endpoint("high", "out")] is True  # not before the next evaluation
    assert eng.evaluate_due(BASE_NS + 3).evaluations == 1  # no new event needed
    assert patch.values[Endpoint("high", "out")] is False
    with pytest.raises(InvalidArgument, match=r"high\.params\.op"):
        patch.set_param("high", "op", "~", BASE_NS + 4)
    assert patch.version == version + 1


def test_activation_names_the_missing_required_input_and_bad_sources() -> None:
    eng = engine(catalog())
    patch = eng.create_patch("p", "s", 0)
    patch.add_module("t", "trades", {}, 0)
    patch.add_module("cmp", "compare", {}, 0)
    with pytest.raises(InvalidArgument) as refused:
        patch.activate(0)
    fields = {v.field: v.description for v in refused.value.violations}
    assert fields == {"cmp.a": "required input is not connected", "t.params": "symbol is not set"}
    assert patch.state is PatchState.DRAFT


def test_activation_needs_the_warm_up_history_which_emits_nothing() -> None:
    eng = engine(catalog())
    patch = eng.create_patch("p", "s", 0, venue="v", symbol="BTC-USDT")
    modules: list[tuple[str, str, dict[str, object]]] = [
        ("t", "trades", {}),
        ("f", "trade_fields", {}),
        ("lag", "lag", {"steps": 5}),
        ("up", "compare", {"value": 0.0}),
        ("go", "position", {"action": "open"}),
    ]
    for module_id, type_name, params in modules:
        patch.add_module(module_id, type_name, params, 0)
    for cable in ("t.trade -> f.trade", "f.price -> lag.a", "lag.out -> up.a", "up.out -> go.trigger"):
        patch.connect(cable, 0)
    assert eng.history_needed("p") == {"t": 5}
    with pytest.raises(FailedPrecondition, match="t needs 5 values of history and was warmed with 0"):
        patch.activate(0)
    eng.warm("p", [("v", trade(BASE_NS + i, 100.0 + i, trade_id=str(i))) for i in range(6)])
    patch.activate(BASE_NS + 10)
    assert patch.values[Endpoint("up", "out")] is True  # warmed: lag has a value
    eng.on_trade("v", trade(BASE_NS + 11, 107.0, trade_id="7"))
    assert eng.evaluate_due(BASE_NS + 12).positions == []  # up stayed true: no new edge
    with pytest.raises(FailedPrecondition, match="pause it"):
        patch.add_module("x", "abs", {}, BASE_NS)


def test_a_slow_module_is_flagged_with_its_time() -> None:
    eng = engine(catalog(), module_budget_ns=MS)
    assert isinstance(eng.timer, FakeTimer)
    Sluggish.timer = eng.timer
    patch = eng.create_patch("p", "s", 0, venue="v", symbol="BTC-USDT")
    patch.add_module("t", "trades", {}, 0)
    patch.add_module("f", "trade_fields", {}, 0)
    patch.add_module("slow", "sluggish", {}, 0)
    patch.connect("t.trade -> f.trade", 0)
    patch.connect("f.price -> slow.a", 0)
    patch.activate(0)
    eng.on_trade("v", trade(BASE_NS, 1.0))
    [slow] = eng.evaluate_due(BASE_NS + 1).slow
    assert (slow.module_id, slow.elapsed_ns, slow.budget_ns) == ("slow", 5 * MS, MS)


def test_every_change_is_recorded_with_its_version_and_time() -> None:
    eng = engine(catalog())
    patch = eng.create_patch("p", "s", 10)
    patch.add_module("a", "abs", {}, 11)
    patch.add_module("b", "abs", {}, 12)
    patch.connect("a.out -> b.a", 13)
    patch.archive(14)
    assert (
        eng.take_changes()
        == patch.changes
        == [
            PatchCreated("p", 0, 10, "s", "", ""),
            ModuleAdded("p", 1, 11, "a", "abs", ()),
            ModuleAdded("p", 2, 12, "b", "abs", ()),
            CableConnected("p", 3, 13, "a.out -> b.a"),
            StateChanged("p", 3, 14, "draft", "archived", ""),
        ]
    )
    with pytest.raises(FailedPrecondition):
        patch.activate(15)


def run_session(seed: int) -> list[object]:
    """A patch of every stateful module kind, fed a seeded random session with clock ticks."""
    eng = engine(catalog())
    now = BASE_NS
    patch = eng.create_patch("p", "s", now, venue="v", symbol="BTC-USDT")
    modules: list[tuple[str, str, dict[str, object]]] = [
        ("bars", "trade_bars", {"timeframe": "1s", "lateness_ms": 200}),
        ("ohlc", "bar_fields", {}),
        ("prev", "lag", {"steps": 1}),
        ("move", "subtract", {}),
        ("up", "crosses_above", {"level": 0.0}),
        ("band", "hysteresis", {"high": 0.5, "low": -0.5}),
        ("held", "hold_for", {"steps": 2, "duration_s": 1.0}),
        ("calm", "cooldown", {"duration_s": 3.0}),
        ("score", "weighted_score", {"threshold": 1.0}),
        ("emit", "signal", {"on": "every"}),
        ("go", "position", {"action": "flip", "side": "short", "fraction": 0.5}),
    ]
    cables = [
        "bars.bar -> ohlc.bar",
        "ohlc.close -> prev.a",
        "ohlc.close -> move.a",
        "prev.out -> move.b",
        "move.out -> up.a",
        "move.out -> band.value",
        "band.out -> held.a",
        "up.out -> score.rule_1",
        "held.out -> score.rule_2",
        "score.triggered -> calm.a",
        "calm.out -> go.trigger",
        "score.signal -> emit.signal",
    ]
    for module_id, type_name, params in modules:
        patch.add_module(module_id, type_name, params, now)
    for cable in cables:
        patch.connect(cable, now)
    eng.warm("p", [("v", trade(now - (5 - i) * S, 100.0, 1.0, f"w{i}")) for i in range(5)])
    patch.activate(now)
    eng.probe("p", "move.out", now)
    rng = random.Random(seed)
    outputs: list[object] = []
    price = 100.0
    for i in range(3000):
        now += rng.randrange(1, 30) * MS
        price = round(price + rng.choice((-1, 1)) * rng.random(), 2)
        eng.on_trade("v", trade(now - rng.randrange(0, 150) * MS, price, round(rng.random(), 3), str(i)))
        if rng.random() < 0.3:
            outputs.append(eng.evaluate_due(now))
        if i % 5 == 0:
            outputs.append(eng.tick(now))
            outputs.append(eng.probe_updates(now))
    outputs.append(eng.take_changes())
    return outputs


def test_the_same_events_through_two_fresh_engines_give_identical_outputs() -> None:
    first, second = run_session(7), run_session(7)
    assert first == second
    signals = [s for out in first if hasattr(out, "signals") for s in out.signals]
    positions = [p for out in first if hasattr(out, "positions") for p in out.positions]
    assert signals and positions  # the session did exercise the sinks
    assert len({s.signal_id for s in signals}) == len(signals)
    assert run_session(8) != first
