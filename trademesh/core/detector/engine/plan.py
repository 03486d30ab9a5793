"""A patch's evaluation plan: its modules in evaluation order, compiled into one function.

The plan is rebuilt after every change of the graph, of a parameter or of the probes (the
patch drops it; the next evaluation or tick builds it). Building it asks each module for its
kernel (trademesh.core.detector.engine.kernel) and generates the Python source of one function that
walks the order with every decision the walk would take at run time made at build time:

- the values on the cables live in one list (`slots`, one entry per output port); the fresh
  flags of an evaluation are local booleans, one per output port something reads;
- a module is stepped when a source of it was fed, when it was retuned, rebuilt or newly
  cabled (`restep`), when an input it reads is fresh, or on a tick when it is time-driven;
  `restep` is only looked at in the watched walk (below), which the patch runs whenever
  restep is not empty: the plain walk has no test for it;
- a module with a kernel is called with its values positionally and answers positionally;
  a module without (a quant's own class) gets `step(Inputs, now_ns)` as before;
- a probe records the value of its port where the port is written, so an unprobed port costs
  nothing and a probed one a call (never a queue);
- a module that raises ends the evaluation and errors the patch (module id and error);
- timing: the injected timer is read once when the evaluation starts and once after each
  module stepped, so each step's time is the difference of two consecutive reads (one read
  per step instead of two; between two reads there is only the plan's own due checks of the
  modules skipped). A step over its budget is reported (SlowModule) with that time, at
  every evaluation: no sampling, so a slow step is never missed. It costs one timer call per
  stepped module (about 60 ns with time.perf_counter_ns, ~0.5 µs of a trend bar's ~9 µs).

The source depends only on the plan's shape (module ids, ports, kernels' arities, which
ports are probed), never on values or parameters, so patches of one strategy share one
compiled factory (a bounded cache keyed by the source); each plan binds its own modules,
slots and probes as closure cells.

`walk` builds the same plan's reference evaluation: a plain loop over the steps calling
every module's `step` with an `Inputs` and timing each step with two reads, as the engine
evaluated before plans were compiled. Tests run both side by side; EngineConfig chooses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from trademesh.core.detector.engine.graph import Endpoint, Graph
from trademesh.core.detector.engine.io import PositionDraft, SignalDraft, Sink, Source
from trademesh.core.detector.engine.kernel import UNCHANGED, Kernel
from trademesh.core.detector.engine.module import Inputs, Module, Outputs
from trademesh.core.detector.engine.outputs import Evaluation, SlowModule
from trademesh.core.detector.engine.probes import Probe
from trademesh.core.detector.engine.values import Value

if TYPE_CHECKING:
    Timer = Callable[[], int]

__all__ = ["WATCHED_EVALUATIONS", "Live", "Plan", "PlanStep", "SlotValues", "Watched", "build_plan"]

Backlogs = tuple[tuple[str, Callable[[], bool]], ...]
# A live evaluation, the engine's call: (now_ns, timer, budget_ns, ticking, result).
Live = Callable[[int, "Timer", int, bool, Evaluation], None]
# Any evaluation, every step timed: (now_ns, ticking, emit, timer, budget_ns, result) ->
# completed (False: a module raised and the patch is errored).
Watched = Callable[[int, bool, bool, "Timer", int, Evaluation], bool]
_NONE_FRESH: frozenset[str] = frozenset()
_CACHE_ENTRIES = 256
# After each plan build, and after an evaluation over a step's budget (or a watched step
# over it), this many evaluations are watched.
WATCHED_EVALUATIONS = 16
_FACTORIES: dict[str, Callable[..., tuple[Live, Watched]]] = {}


class Owner(Protocol):
    """What a plan needs of its patch."""

    id: str
    dirty: bool
    watch: int
    evaluations: int
    _fed: set[str]
    _restep: set[str]
    _pending: set[Any]
    graph: Graph
    modules: dict[str, Module]
    probes: dict[Endpoint, Probe]
    warmed: dict[str, int]

    def _fail(self, module_id: str, exc: Exception, now_ns: int, result: Evaluation) -> None: ...

    def _collect(
        self, module_id: str, drafts: list[SignalDraft | PositionDraft], now_ns: int, result: Evaluation
    ) -> None: ...


class SlotValues(Mapping[Endpoint, Value]):
    """The values on a patch's output ports, read-only: a view of the plan's slots."""

    __slots__ = ("index", "slots")

    def __init__(self, index: dict[Endpoint, int], slots: list[Value]) -> None:
        self.index, self.slots = index, slots

    def __getitem__(self, end: Endpoint) -> Value:
        return self.slots[self.index[end]]

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def clear_module(self, module_id: str) -> None:
        """Forget a removed module's values (a module added later under its id starts empty)."""
        for end, slot in self.index.items():
            if end.module == module_id:
                self.slots[slot] = None


@dataclass(frozen=True, slots=True)
class PlanStep:
    """A module's place in the plan: where its inputs come from, what it outputs."""

    module_id: str
    module: Module
    feeds: tuple[tuple[str, Endpoint], ...]  # (input port, the output feeding it), by port
    outputs: tuple[Endpoint, ...]  # the spec's order
    time_driven: bool
    source: bool
    sink: bool


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[PlanStep, ...]
    values: SlotValues
    # A live evaluation: counts it, and runs `watched` while the patch watches its steps or
    # has modules to restep; otherwise the plain walk, timed as a whole.
    live: Live
    # The walk with every step timed (consecutive timer reads), for warm-up evaluations too.
    watched: Watched
    # Sources whose class reacts to the clock (closes bars by time), and those that may keep
    # a backlog (closed bars each needing an evaluation): (module id, bound method).
    tickers: tuple[tuple[str, Callable[[int], bool]], ...]
    backlogs: Backlogs
    time_driven: bool
    source: str = ""  # the generated code ("" for the reference walk)

    @property
    def ticks(self) -> bool:
        """Whether a clock tick can give the patch anything to do."""
        return bool(self.tickers) or self.time_driven


def build_plan(owner: Owner, previous: SlotValues | None, *, compiled: bool = True) -> Plan:
    """The plan of the owner's graph as it is now; values carried over from `previous`."""
    graph, modules = owner.graph, owner.modules
    steps = tuple(_plan_step(graph, modules, module_id) for module_id in graph.order)
    index = {end: slot for slot, end in enumerate(end for step in steps for end in step.outputs)}
    old = previous if previous is not None else {}
    values = SlotValues(index, [old.get(end) for end in index])
    sources = [(step.module_id, step.module) for step in steps if isinstance(step.module, Source)]
    tickers = tuple((m, s.on_tick) for m, s in sources if type(s).on_tick is not Source.on_tick)
    backlogs = tuple((m, s.backlog) for m, s in sources if type(s).backlog is not Source.backlog)
    time_driven = any(step.time_driven for step in steps)
    if compiled:
        live, watched, source = _compile(owner, steps, values, backlogs)
    else:
        live, watched = _walk(owner, steps, values, backlogs)
        source = ""
    return Plan(steps, values, live, watched, tickers, backlogs, time_driven, source)


def _plan_step(graph: Graph, modules: Mapping[str, Module], module_id: str) -> PlanStep:
    spec = graph.nodes[module_id].spec
    module = modules[module_id]
    return PlanStep(
        module_id,
        module,
        tuple(sorted((c.target.port, c.source) for c in graph.feeding(module_id))),
        tuple(Endpoint(module_id, port.name) for port in spec.outputs),
        spec.time_driven,
        isinstance(module, Source),
        isinstance(module, Sink),
    )


# ---- the compiled evaluation


def _compile(
    owner: Owner, steps: tuple[PlanStep, ...], values: SlotValues, backlogs: Backlogs
) -> tuple[Live, Watched, str]:
    code = _Code(owner, values)
    for step in steps:
        code.step(step)
    source, lines = code.source(backlogs)
    factory = _FACTORIES.get(source)
    if factory is None:
        namespace: dict[str, Callable[..., tuple[Live, Watched]]] = {}
        exec(compile(source, f"<plan {owner.id}>", "exec"), namespace)  # our own generated code
        factory = namespace["factory"]
        if len(_FACTORIES) >= _CACHE_ENTRIES:
            del _FACTORIES[next(iter(_FACTORIES))]
        _FACTORIES[source] = factory
    live, watched = factory(lines, *code.constants)
    return live, watched, source


@dataclass
class _Block:
    """One module's part of the generated walk, before the timing is laid around it."""

    module_id: str
    head: list[str]  # at the walk's depth: the comment, fresh flags reset
    due: str
    body: list[str]  # inside `if due:`
    generic: bool  # a module without a kernel: timed on its own in every evaluation
    sink: tuple[str, str] | None  # (its pending list, its take)


class _Code:
    """The generated source of one plan, and the constants its names bind."""

    def __init__(self, owner: Owner, values: SlotValues) -> None:
        self.owner = owner
        self.slot = values.index
        self.names: list[str] = []
        self.constants: list[object] = []
        self.blocks: list[_Block] = []
        self.body: list[str] = []  # the block being built
        # Output slots something reads: only these get a fresh flag.
        self.read = {values.index[c.source] for c in owner.graph.cables.values() if c.source in values.index}
        self.bind("V", values.slots)
        self.bind("U", UNCHANGED)
        self.bind("W", owner.warmed)
        self.bind("PID", owner.id)
        self.bind("SlowModule", SlowModule)
        self.bind("Inputs", Inputs)
        self.bind("NONE_FRESH", _NONE_FRESH)
        self.bind("fail", owner._fail)
        self.bind("collect", owner._collect)
        self.bind("store", _store)
        self.bind("P", owner)
        self.bind("PENDING", owner._pending)
        self.bind("fed", owner._fed)
        self.bind("restep", owner._restep)
        self.bind("WATCH", WATCHED_EVALUATIONS)

    def bind(self, name: str, value: object) -> str:
        self.names.append(name)
        self.constants.append(value)
        return name

    def line(self, depth: int, text: str) -> None:
        self.body.append("    " * depth + text)

    def step(self, step: PlanStep) -> None:
        i = len(self.blocks)
        head = [f"# {step.module_id} ({type(step.module).__name__})"]
        head += [f"f{self.slot[end]} = False" for end in step.outputs if self.slot[end] in self.read]
        self.body = []
        connected = frozenset(port for port, _ in step.feeds)
        try:
            kernel = step.module.kernel(connected)
        except Exception:  # a broken kernel(): its step will say what is wrong, in the walk
            kernel = None
        if kernel is None:
            self._generic(step, i)
        else:
            self._kernel(step, kernel, i)
        sink = None
        if step.sink:
            assert isinstance(step.module, Sink)
            sink = self.bind(f"o{i}", step.module.pending), self.bind(f"tk{i}", step.module.take)
        self.blocks.append(_Block(step.module_id, head, self._due(step), self.body, kernel is None, sink))

    def _due(self, step: PlanStep) -> str:
        mid = repr(step.module_id)
        terms = [f"{mid} in fed"] if step.source else []
        terms += sorted({f"f{self.slot[end]}" for _, end in step.feeds})
        if step.time_driven:
            terms.append("ticking")
        return " or ".join(terms)

    def _kernel(self, step: PlanStep, kernel: Kernel, i: int) -> None:
        feeds = dict(step.feeds)
        args = [f"V[{self.slot[feeds[p]]}]" if p in feeds else "None" for p in kernel.values]
        args += [f"f{self.slot[feeds[p]]}" if p in feeds else "False" for p in kernel.fresh]
        if kernel.now:
            args.append("now_ns")
        name = self.bind(f"k{i}", kernel.call)
        call = f"{name}({', '.join(args)})"
        if not step.outputs:
            self.line(0, call)
            return
        if kernel.inline is None:
            self.line(0, f"r = {call}")
        else:
            bound = {key: self.bind(f"c{i}_{key}", value) for key, value in kernel.inline.names.items()}
            for text in kernel.inline.lines:
                self.line(0, text.format(*args, call=name, **bound))
        self.line(0, "if r is not U:")
        if len(step.outputs) == 1:
            self._answered(step.outputs[0], "r", 1)
        else:
            parts = [f"r{n}" for n in range(len(step.outputs))]
            self.line(1, f"{', '.join(parts)} = r")
            for part, end in zip(parts, step.outputs, strict=True):
                if kernel.whole:
                    self._answered(end, part, 1)
                else:
                    self.line(1, f"if {part} is not U:")
                    self._answered(end, part, 2)
        self._warmed(step, 1)

    def _answered(self, end: Endpoint, name: str, depth: int) -> None:
        slot = self.slot[end]
        self.line(depth, f"V[{slot}] = {name}")
        if slot in self.read:
            self.line(depth, f"f{slot} = True")
        probe = self.owner.probes.get(end)
        if probe is not None:
            self.line(depth, f"if emit: {self.bind(f'p{slot}', probe.record)}({name}, now_ns)")

    def _warmed(self, step: PlanStep, depth: int) -> None:
        if step.source:
            mid = repr(step.module_id)
            self.line(depth, f"if not emit: W[{mid}] = W.get({mid}, 0) + 1")

    def _generic(self, step: PlanStep, i: int) -> None:
        """A module without a kernel: step(Inputs, now_ns) and its mapping, as before."""
        method = self.bind(f"m{i}", step.module.step)
        if step.feeds:
            given = ", ".join(f"{port!r}: V[{self.slot[end]}]" for port, end in step.feeds)
            flags = ", ".join(f"({port!r}, f{self.slot[end]})" for port, end in step.feeds)
            inputs = f"Inputs({{{given}}}, frozenset([p for p, f in ({flags},) if f]))"
        else:
            inputs = "Inputs({}, NONE_FRESH)"
        slots = self.bind(f"s{i}", {end.port: self.slot[end] for end in step.outputs})
        probed = {end.port: p for end in step.outputs if (p := self.owner.probes.get(end)) is not None}
        probes = self.bind(f"q{i}", probed) if probed else "None"
        self.line(0, f"out = {method}({inputs}, now_ns)")
        self.line(0, "if out:")
        self.line(1, f"store(out, {slots}, V, {probes} if emit else None, now_ns)")
        for end in step.outputs:
            if self.slot[end] in self.read:
                self.line(1, f"f{self.slot[end]} = {end.port!r} in out")
        self._warmed(step, 1)

    def source(self, backlogs: Backlogs) -> tuple[str, dict[int, str]]:
        """The factory's source, and which module each line of its walks belongs to (a
        module that raises is found from its traceback's line: no bookkeeping per step)."""
        backlog_names = [(m, self.bind(f"bl{n}", backlog)) for n, (m, backlog) in enumerate(backlogs)]
        lines: list[tuple[str, str]] = [("", "def factory(LINES, *C):")]
        lines += [("", f"    {name} = C[{n}]") for n, name in enumerate(self.names)]
        for watched in (False, True):
            lines += self._function(watched, backlog_names)
        lines += [("", "    return live, watched"), ("", "")]
        owners = {number: owner for number, (owner, _) in enumerate(lines, 1) if owner}
        return "\n".join(text for _, text in lines), owners

    def _function(self, watched: bool, backlogs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if watched:
            lines = ["    def watched(now_ns, ticking, emit, timer, budget, result):"]
        else:  # the engine's call: counts, and hands over to `watched` when it must
            lines = [
                "    def live(now_ns, timer, budget, ticking, result):",
                "        result.evaluations += 1",
                "        P.evaluations += 1",
                "        if P.watch or restep:",
                "            if P.watch:",
                "                P.watch -= 1",
                "            watched(now_ns, ticking, True, timer, budget, result)",
                "            return",
                "        emit = True",
            ]
        lines += ["        t0 = timer()", "        try:"]
        out = [("", text) for text in lines]
        for block in self.blocks:
            out += [(block.module_id, "            " + text) for text in self._block(block, watched)]
        if not self.blocks:
            out.append(("", "            pass"))
        tail = [
            "        except Exception as exc:  # a module's error isolates its patch",
            "            fail(LINES.get(exc.__traceback__.tb_lineno, ''), exc, now_ns, result)",
            "            return False" if watched else "            return",
            "        fed.clear()",
            "        if restep:",
            "            restep.clear()",
            "        P.dirty = False",
        ]
        for module_id, backlog in backlogs:
            tail += [f"        if {backlog}():", f"            fed.add({module_id!r})"]
            tail += ["            P.dirty = True", "            PENDING.add(P)"]
        if watched:
            tail.append("        return True")
        else:  # the whole evaluation over a step's budget: watch the next ones
            tail += ["        if timer() - t0 > budget:", "            P.watch = WATCH"]
        return out + [("", text) for text in tail]

    def _block(self, block: _Block, watched: bool) -> list[str]:
        mid = repr(block.module_id)
        start = "t0" if watched else "t2"  # the chain of reads, or a pair around the step
        slow = [
            "    t1 = timer()",
            f"    if t1 - {start} > budget:",
            f"        result.slow.append(SlowModule(PID, {mid}, t1 - {start}, budget, now_ns))",
            "        P.watch = WATCH",
        ]
        # Retuned, rebuilt or newly cabled modules (restep) only in the watched walk: the
        # patch runs that one while restep is not empty.
        due = block.due or "False"  # no inputs, not a source, not time-driven: restep only
        if watched:
            due = (
                f"{block.due} or (restep and {mid} in restep)" if block.due else f"restep and {mid} in restep"
            )
        lines = [*block.head, f"if {due}:"]
        if block.generic and not watched:
            lines.append("    t2 = timer()")
        lines += ["    " + text for text in block.body]
        if watched:
            lines += [*slow, "    t0 = t1"]
        elif block.generic:
            lines += slow
        if block.sink is not None:
            out, take = block.sink
            lines += [f"    if {out}:", f"        drafts = {take}()", "        if emit:"]
            lines.append(f"            collect({mid}, drafts, now_ns, result)")
            if watched:
                lines.append("        t0 = timer()")
        return lines


def _store(
    out: Outputs, slots: dict[str, int], values: list[Value], probes: dict[str, Probe] | None, now_ns: int
) -> None:
    """A `step`'s mapping into the slots (and the probes of its ports)."""
    for port, value in out.items():
        slot = slots.get(port)
        if slot is None:
            raise ValueError(f"step returned an unknown output {port!r}")
        values[slot] = value
        if probes:
            probe = probes.get(port)
            if probe is not None:
                probe.record(value, now_ns)


# ---- the reference walk


def _walk(
    owner: Owner, steps: tuple[PlanStep, ...], values: SlotValues, backlogs: Backlogs
) -> tuple[Live, Watched]:
    """The plan evaluated by a plain loop, every module through `step(Inputs)`."""
    slots, index = values.slots, values.index
    fed, restep = owner._fed, owner._restep

    def live(now_ns: int, timer: Timer, budget: int, ticking: bool, result: Evaluation) -> None:
        result.evaluations += 1
        owner.evaluations += 1
        owner.watch = max(owner.watch - 1, 0)
        evaluate(now_ns, ticking, True, timer, budget, result)

    def evaluate(
        now_ns: int, ticking: bool, emit: bool, timer: Timer, budget: int, result: Evaluation
    ) -> bool:
        fresh: set[Endpoint] = set()
        for step in steps:
            due = (
                step.module_id in fed
                or step.module_id in restep
                or any(end in fresh for _, end in step.feeds)
                or (ticking and step.time_driven)
            )
            if not due:
                continue
            inputs = Inputs(
                {port: slots[index[end]] for port, end in step.feeds},
                frozenset(port for port, end in step.feeds if end in fresh),
            )
            started = timer()
            try:
                out = step.module.step(inputs, now_ns)
                if out:
                    ports = {end.port: index[end] for end in step.outputs}
                    probes = {end.port: p for end in step.outputs if (p := owner.probes.get(end)) is not None}
                    _store(out, ports, slots, probes if emit else None, now_ns)
                    fresh.update(Endpoint(step.module_id, port) for port in out)
                    if step.source and not emit:
                        owner.warmed[step.module_id] = owner.warmed.get(step.module_id, 0) + 1
            except Exception as exc:  # a module's error isolates its patch
                owner._fail(step.module_id, exc, now_ns, result)
                return False
            elapsed = timer() - started
            if elapsed > budget:
                result.slow.append(SlowModule(owner.id, step.module_id, elapsed, budget, now_ns))
            if step.sink:
                assert isinstance(step.module, Sink)
                drafts = step.module.take()
                if emit:
                    owner._collect(step.module_id, drafts, now_ns, result)
        fed.clear()
        restep.clear()
        owner.dirty = False
        for module_id, backlog in backlogs:
            if backlog():
                fed.add(module_id)
                owner.dirty = True
                owner._pending.add(owner)
        return True

    return live, evaluate
