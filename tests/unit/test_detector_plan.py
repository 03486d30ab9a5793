"""The compiled plan against the reference walk: the same patches fed the same events, with
the same edits, through an engine that evaluates compiled plans and one that walks them with
every module's `step` (EngineConfig.compiled_plans=False), give the same outputs, values,
probe updates and states: on random graphs and edit sequences, and on the three example
strategies."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.detector_support import BASE_NS, FakeTimer
from trademesh.core.detector.config import EXAMPLES_DIR
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.graph import Endpoint
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.module import Category, Inputs, Module, ModuleSpec, Outputs, Port
from trademesh.core.detector.engine.values import BarValue, BookValue, PortType, TradeValue
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

S = 1_000_000_000
MS = 1_000_000
SYMBOL = "BTC-USDT"
VENUE = "v"


class Halver(Module):
    """A quant's own module (no kernel): the compiled plan calls its step with an Inputs."""

    spec = ModuleSpec(
        "halver",
        Category.MATH,
        "a / 2 when a is new, and how many steps it took",
        inputs=(Port("a", PortType.NUMBER), Port("b", PortType.NUMBER, optional=True)),
        outputs=(Port("half", PortType.NUMBER), Port("steps", PortType.NUMBER)),
    )

    def __init__(self, params: dict[str, int | float | bool | str]) -> None:
        super().__init__(params)
        self.steps = 0

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        self.steps += 1
        a = inputs["a"]
        out: dict[str, object] = {"steps": float(self.steps)}
        if inputs.is_fresh("a") and isinstance(a, float):
            out["half"] = a / 2
        return out  # type: ignore[return-value]


def catalog() -> Catalog:
    catalog = Catalog.builtin()
    catalog.register(Halver, custom=True)
    return catalog


def engines() -> tuple[Engine, Engine]:
    """(compiled, reference): the same catalog and a timer that never moves."""
    cat = catalog()
    return (
        Engine(cat, FakeTimer(), EngineConfig(compiled_plans=True)),
        Engine(cat, FakeTimer(), EngineConfig(compiled_plans=False)),
    )


# ---- random patches

# (type, params to draw from): the module kinds a random patch is made of.
_KINDS: list[tuple[str, dict[str, list[object]]]] = [
    ("ema", {"period": [1, 2, 3]}),
    ("sma", {"period": [1, 3]}),
    ("rsi", {"period": [2, 3]}),
    ("zscore", {"period": [2, 4]}),
    ("macd", {"fast": [2], "slow": [3, 4], "signal": [2]}),
    ("bollinger", {"period": [2, 3], "k": [1.0, 2.0]}),
    ("volume_spike", {"period": [2, 3], "factor": [1.0, 1.5]}),
    ("atr", {"period": [2]}),
    ("donchian", {"period": [2, 3]}),
    ("vwap", {"period": [2, 3]}),
    ("trade_flow_imbalance", {"period": [2, 3]}),
    ("book_imbalance", {"levels": [1, 2]}),
    ("spread", {}),
    ("compare", {"op": [">", "<=", "=="], "value": [0.0, 0.5, 100.0]}),
    ("crosses_above", {"level": [0.0, 100.0]}),
    ("crosses_below", {"level": [0.0, 100.0]}),
    ("and", {}),
    ("or", {}),
    ("not", {}),
    ("hysteresis", {"high": [0.5, 100.0], "low": [0.0, -1.0]}),
    ("hold_for", {"steps": [1, 2], "duration_s": [0.0, 0.2]}),
    ("cooldown", {"duration_s": [0.0, 0.3]}),
    ("add", {"value": [1.0]}),
    ("subtract", {"value": [100.0]}),
    ("divide", {"value": [0.0, 2.0]}),
    ("abs", {}),
    ("clamp", {"low": [0.0], "high": [1.0, 50.0]}),
    ("lag", {"steps": [1, 2]}),
    ("weighted_score", {"threshold": [0.5, 1.0, 2.0], "direction": ["long", "short"]}),
    ("halver", {}),
]
_SOURCES = ["trades", "book", "bars", "trade_bars"]


@dataclass
class Design:
    """A random patch: modules (id, type, params) and cables, in the order to add them."""

    modules: list[tuple[str, str, dict[str, object]]]
    cables: list[str]


def design(rng: random.Random, catalog: Catalog) -> Design:
    modules: list[tuple[str, str, dict[str, object]]] = []
    cables: list[str] = []
    outputs: list[tuple[Endpoint, PortType]] = []

    def add(module_id: str, type_name: str, params: dict[str, object]) -> None:
        modules.append((module_id, type_name, params))
        outputs.extend((Endpoint(module_id, p.name), p.type) for p in catalog.spec(type_name).outputs)

    for n, source in enumerate(rng.sample(_SOURCES, rng.randint(1, 3))):
        params: dict[str, object] = {"timeframe": "1s"} if "bars" in source else {}
        if source == "trade_bars":
            params["lateness_ms"] = rng.choice([0, 200])
        add(f"src{n}", source, params)
        if source == "trades":
            add(f"tf{n}", "trade_fields", {})
            cables.append(f"src{n}.trade -> tf{n}.trade")
        if "bars" in source:
            add(f"bf{n}", "bar_fields", {})
            cables.append(f"src{n}.bar -> bf{n}.bar")
    for n in range(rng.randint(3, 12)):
        type_name, choices = rng.choice(_KINDS)
        spec = catalog.spec(type_name)
        wiring = []
        for port in spec.inputs:
            fitting = [end for end, kind in outputs if kind is port.type]
            if not fitting or (port.optional and rng.random() < 0.5):
                if not port.optional:
                    break
                continue
            wiring.append(f"{rng.choice(fitting)} -> m{n}.{port.name}")
        else:
            add(f"m{n}", type_name, {name: rng.choice(values) for name, values in choices.items()})
            cables += wiring
    signals = [end for end, kind in outputs if kind is PortType.SIGNAL]
    if signals:
        add("emit", "signal", {"on": rng.choice(["rise", "every"])})
        cables.append(f"{rng.choice(signals)} -> emit.signal")
    flags = [end for end, kind in outputs if kind is PortType.BOOLEAN]
    if flags:
        add("go", "position", {"action": "flip"})
        cables.append(f"{rng.choice(flags)} -> go.trigger")
    return Design(modules, cables)


def events(rng: random.Random, start_ns: int, count: int, symbol: str = SYMBOL) -> list[tuple[int, Event]]:
    """Trades, books and closed 1s bars of one symbol in time order, a random walk."""
    out: list[tuple[int, Event]] = []
    price, now = 100.0, start_ns
    for i in range(count):
        now += rng.randrange(1, 400) * MS
        price = round(price * (1 + rng.gauss(0, 0.004)), 2)
        kind = rng.random()
        if kind < 0.5:
            side = rng.choice([True, False, None])
            out.append((now, TradeValue(symbol, now, price, round(rng.expovariate(1.0), 3), side, str(i))))
        elif kind < 0.75:
            bids = tuple((price - 0.5 * k, rng.choice([0.0, 1.0, 2.5])) for k in range(1, rng.randint(1, 4)))
            asks = tuple((price + 0.5 * k, rng.choice([0.0, 1.0, 3.0])) for k in range(1, rng.randint(1, 4)))
            out.append((now, BookValue(symbol, now, bids, asks)))
        else:
            open_ns = now - now % S - S
            high, low = price * 1.001, price * 0.999
            volume = rng.choice([0.0, rng.expovariate(0.5)])
            out.append(
                (now, BarValue(symbol, 1, open_ns, price, high, low, price, volume, volume * price, 3))
            )
    return out


def build(engine: Engine, plan: Design) -> None:
    patch = engine.create_patch("p", "s", BASE_NS, venue=VENUE, symbol=SYMBOL)
    for module_id, type_name, params in plan.modules:
        patch.add_module(module_id, type_name, params, BASE_NS)
    for cable in plan.cables:
        patch.connect(cable, BASE_NS)


def warm_and_activate(engine: Engine, history: list[tuple[int, Event]]) -> None:
    engine.warm("p", [(VENUE, event) for _, event in history])
    patch = engine.patch("p")
    with contextlib.suppress(FailedPrecondition):  # short of history: a draft, fed nothing
        patch.activate(history[-1][0])


# (what, arguments): applied to each engine by `apply`.
Op = tuple[str, tuple[object, ...]]
_RETUNES: dict[str, list[dict[str, object]]] = {
    "compare": [{"value": 0.5}, {"op": "<"}, {"value": 100.0, "op": ">="}],
    "weighted_score": [{"threshold": 0.5}, {"weight_1": 3.0}, {"direction": "short"}, {"name_2": "x"}],
    "hysteresis": [{"high": 200.0}, {"low": -5.0}],
    "clamp": [{"high": 2.0}],
}


def operations(rng: random.Random, plan: Design, live: list[tuple[int, Event]]) -> list[Op]:
    """What happens to both engines: events, evaluations, ticks, live parameter changes,
    probes, and a pause for a new cable or one taken away."""
    retunable = [(m, t) for m, t, _ in plan.modules if t in _RETUNES]
    ports = [f"{m}.{p.name}" for m, t, _ in plan.modules for p in catalog().spec(t).outputs]
    ops: list[Op] = []
    for now, event in live:
        ops.append(("feed", (event,)))
        roll = rng.random()
        if roll < 0.6:
            ops.append(("due", (now,)))
        if roll < 0.3:
            ops.append(("tick", (now + rng.randrange(0, 900) * MS,)))
        if roll < 0.05 and retunable:
            module_id, type_name = rng.choice(retunable)
            ops.append(("retune", (module_id, rng.choice(_RETUNES[type_name]), now)))
        if roll < 0.04 and ports:
            ops.append(("probe", (rng.choice(ports), now)))
        if roll < 0.02:
            ops.append(("updates", (now,)))
        if roll < 0.01:
            ops.append(("recable", (rng.random(), now)))
    ops.append(("end", (live[-1][0] + 10 * S,)))
    return ops


def apply(engine: Engine, plan: Design, op: Op) -> object:
    what, args = op
    match what:
        case "feed":
            return engine.feed(VENUE, args[0])  # type: ignore[arg-type]
        case "due":
            return engine.evaluate_due(args[0])  # type: ignore[arg-type]
        case "tick":
            return engine.tick(args[0])  # type: ignore[arg-type]
        case "retune":
            module_id, change, now = args
            engine.patch("p").set_params(module_id, change, now)  # type: ignore[arg-type]
            return None
        case "probe":
            return engine.probe("p", *args)  # type: ignore[arg-type]
        case "updates":
            return engine.probe_updates(args[0])  # type: ignore[arg-type]
        case "recable":
            return recable(engine, plan, *args)  # type: ignore[arg-type]
    now = args[0]
    return engine.tick(now), engine.evaluate_due(now), engine.probe_updates(now)  # type: ignore[arg-type]


def recable(engine: Engine, plan: Design, choice: float, now: int) -> object:
    """Pause, cable a free optional input (or take a cable away), activate again."""
    patch = engine.patch("p")
    if patch.state is not PatchState.ACTIVE:
        return None
    free = [
        (m, p.name, p.type)
        for m, t, _ in plan.modules
        for p in catalog().spec(t).inputs
        if p.optional and Endpoint(m, p.name) not in patch.graph.cables
    ]
    outputs = [(m, p.name, p.type) for m, t, _ in plan.modules for p in catalog().spec(t).outputs]
    patch.pause(now)
    try:
        if free and choice < 0.7:
            module_id, port, kind = free[int(choice * 1000) % len(free)]
            sources = [f"{m}.{o}" for m, o, t in outputs if t is kind and m != module_id]
            if sources:
                patch.connect(f"{sources[int(choice * 7919) % len(sources)]} -> {module_id}.{port}", now)
        elif patch.graph.cables:
            cables = sorted(patch.graph.cables.values())
            patch.disconnect(cables[int(choice * 1000) % len(cables)], now)
    except InvalidArgument as exc:  # a cycle: the same refusal in both
        return str(exc)
    try:
        patch.activate(now)
    except (InvalidArgument, FailedPrecondition) as exc:
        return str(exc)
    return None


def observed(engine: Engine, result: object) -> object:
    patch = engine.patch("p")
    values = {str(end): value for end, value in patch.values.items()}
    return result, values, patch.state, patch.error, patch.version, patch.evaluations


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32))
def test_the_compiled_plan_evaluates_as_the_reference_walk(seed: int) -> None:
    rng = random.Random(seed)
    plan = design(rng, catalog())
    stream = events(rng, BASE_NS, 260)
    history, live = stream[:60], stream[60:]
    ops = operations(rng, plan, live)
    compiled, reference = engines()
    for engine in (compiled, reference):
        build(engine, plan)
        warm_and_activate(engine, history)
    assert observed(compiled, None) == observed(reference, None)
    for step, op in enumerate(ops):
        done = observed(compiled, apply(compiled, plan, op))
        assert done == observed(reference, apply(reference, plan, op)), f"op {step}: {op[0]}"
    assert compiled.take_changes() == reference.take_changes()


def test_a_random_session_does_emit_and_steps_every_kind() -> None:
    """The generator above is not vacuous: over a few seeds the patches emit signals and
    position requests and contain every module kind."""
    signals = positions = 0
    kinds: set[str] = set()
    for seed in range(40):
        rng = random.Random(seed)
        plan = design(rng, catalog())
        kinds |= {type_name for _, type_name, _ in plan.modules}
        stream = events(rng, BASE_NS, 260)
        engine = engines()[0]
        build(engine, plan)
        warm_and_activate(engine, stream[:60])
        for now, event in stream[60:]:
            engine.feed(VENUE, event)
            result = engine.evaluate_due(now)
            signals += len(result.signals)
            positions += len(result.positions)
    assert signals > 0 and positions > 0
    assert kinds >= {kind for kind, _ in _KINDS} | set(_SOURCES)


# ---- the examples


def example_run(name: str, compiled: bool) -> list[object]:
    """An example strategy on two symbols, warmed from bars, then fed trades, books and bars
    with evaluations and ticks; every output in order."""
    cat = Catalog.builtin()
    engine = Engine(cat, FakeTimer(), EngineConfig(compiled_plans=compiled))
    strategy = load_strategy(EXAMPLES_DIR / f"{name}.toml", cat)
    symbols = ("BTC/USDT", "ETH/USDT")
    strategy = dataclasses.replace(strategy, symbols=symbols, venues=("sim",))
    patches = build_patches(engine, strategy, BASE_NS)
    rng = random.Random(11)
    feeds = {symbol: events(random.Random(n), BASE_NS, 4000, symbol) for n, symbol in enumerate(symbols)}
    for patch in patches:
        history = [("sim", e) for _, e in feeds[patch.symbol][:400]]
        engine.warm(patch.id, history)
        patch.activate(BASE_NS + 400 * S)
    outputs: list[object] = []
    merged = sorted((now, symbol, event) for symbol in symbols for now, event in feeds[symbol][400:])
    for now, _, event in merged:
        engine.feed("sim", event)
        outputs.append(engine.evaluate_due(now))
        if rng.random() < 0.3:
            outputs.append(engine.tick(now))
    outputs.append(engine.take_changes())
    return outputs


def test_the_examples_evaluate_the_same_compiled_and_walked() -> None:
    for name in ("trend", "mean_reversion", "order_flow"):
        compiled, walked = example_run(name, True), example_run(name, False)
        assert compiled == walked, name
        evaluations = sum(getattr(out, "evaluations", 0) for out in compiled)
        assert evaluations > 100, name
