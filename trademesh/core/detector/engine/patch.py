"""A patch: its graph, its module instances, the values on its cables, its lifecycle and its
change log; evaluated on demand by the engine.

Evaluation walks the evaluation order once. A module is stepped when one of its inputs is
fresh (its upstream output changed in this evaluation), when it is a source with a value
waiting, when it was retuned or rebuilt or newly cabled, and, on a clock tick, when it is
time-driven; every other module keeps its outputs. A module that raises marks the patch
errored (module id and error text) and ends the evaluation; other patches are not touched.

The walk is a plan compiled into one function (trademesh.core.detector.engine.plan), dropped at every
change of structure, parameters or probes and rebuilt at the next evaluation or tick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.changes import (
    CableConnected,
    CableDisconnected,
    Change,
    ModuleAdded,
    ModuleRemoved,
    ParamSet,
    PatchCreated,
    PatchUpdated,
    StateChanged,
)
from trademesh.core.detector.engine.graph import Cable, Endpoint, Graph
from trademesh.core.detector.engine.io import Event, PositionDraft, SignalDraft, Source, event_time
from trademesh.core.detector.engine.lifecycle import EDITABLE, PatchState, allowed
from trademesh.core.detector.engine.module import Module, Param
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation, PositionRequest, emission_id
from trademesh.core.detector.engine.plan import WATCHED_EVALUATIONS, Live, Plan, SlotValues, build_plan
from trademesh.core.detector.engine.probes import Probe
from trademesh.core.detector.engine.values import Value
from trademesh.core.detector.engine.warmup import history_needed, validate
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, NotFound

__all__ = ["Patch", "Timer"]

Timer = Callable[[], int]
_ERROR_CHARS = 300


class Patch:
    def __init__(
        self,
        patch_id: str,
        strategy_id: str,
        catalog: Catalog,
        now_ns: int,
        *,
        venue: str = "",
        symbol: str = "",
        warmup: int = 0,
        name: str = "",
        description: str = "",
        on_change: Callable[[Change], None] | None = None,
        compiled: bool = True,
        pending: set[Patch] | None = None,
    ) -> None:
        self.id, self.strategy_id, self.venue, self.symbol = patch_id, strategy_id, venue, symbol
        # For people (the API shows them); they do not change what the patch computes.
        self.name, self.description = name, description
        self.catalog = catalog
        self.graph = Graph()
        self.modules: dict[str, Module] = {}
        self.state = PatchState.DRAFT
        self.version = 0
        self.error: str | None = None
        self.changes: list[Change] = []
        # The strategy's own minimum of history for its bar and trade sources.
        self.declared_warmup = warmup
        self.warmed: dict[str, int] = {}
        # Evaluations run live (not warm-up), for the service's rate.
        self.evaluations = 0
        self.probes: dict[Endpoint, Probe] = {}
        self.dirty = False
        # Where the patch puts itself when it becomes dirty: the engine's set of patches that
        # may need an evaluation (so it visits those, not every patch).
        self._pending: set[Patch] = set() if pending is None else pending
        # The latest event a source took, or the bar a tick closed: a signal names its time
        # (event_time, taken when a signal is made, not at every event).
        self.last_event: Event | None = None
        self.sequence = 0
        self._fed: set[str] = set()
        self._restep: set[str] = set()
        # The compiled plan (False: the reference walk), None when a change dropped it.
        self.compiled = compiled
        self._plan: Plan | None = None
        # Evaluations left to run watched (every step timed): see trademesh.core.detector.engine.plan.
        self.watch = 0
        # A live evaluation (the engine's call): the plan's, or the build of one first.
        self.live: Live = self._live_first
        self._values = SlotValues({}, [])
        self._on_change = on_change
        self._record(PatchCreated(patch_id, 0, now_ns, strategy_id, venue, symbol, name, description))

    # ---- structure (not while active)

    def add_module(self, module_id: str, type_name: str, params: Mapping[str, object], now_ns: int) -> None:
        self._editable()
        module_class = self.catalog.types.get(type_name)
        if module_class is None:
            raise InvalidArgument.field(f"{module_id}.type", f"no module type {type_name!r} in the catalog")
        given = self._placed(module_class.spec.params, params)
        try:
            checked = module_class.spec.checked_params(given)
        except InvalidArgument as exc:
            raise _under(exc, f"{module_id}.params") from None
        module = _build(module_class, checked, module_id)
        self.graph.add_module(module_id, module_class.spec, checked)
        self.modules[module_id] = module
        self._changed(
            ModuleAdded(self.id, self.version + 1, now_ns, module_id, type_name, tuple(checked.items()))
        )

    def remove_module(self, module_id: str, now_ns: int) -> None:
        self._editable()
        removed = self.graph.remove_module(module_id)
        del self.modules[module_id]
        self._values.clear_module(module_id)
        for end in [end for end in self.probes if end.module == module_id]:
            del self.probes[end]
        for cable in removed:
            self._restep.add(cable.target.module)
        self._restep.discard(module_id)
        cables = tuple(str(cable) for cable in removed)
        self._changed(ModuleRemoved(self.id, self.version + 1, now_ns, module_id, cables))

    def connect(self, cable: Cable | str, now_ns: int) -> Cable:
        cable = self._rewire(cable, self.graph.connect)
        self._changed(CableConnected(self.id, self.version + 1, now_ns, str(cable)))
        return cable

    def disconnect(self, cable: Cable | str, now_ns: int) -> None:
        cable = self._rewire(cable, self.graph.disconnect)
        self._changed(CableDisconnected(self.id, self.version + 1, now_ns, str(cable)))

    def _rewire(self, cable: Cable | str, change: Callable[[Cable], object]) -> Cable:
        """The cable, after `change` (the graph's connect or disconnect) took it: its target steps again."""
        self._editable()
        cable = Cable.parse(cable) if isinstance(cable, str) else cable
        change(cable)
        self._restep.add(cable.target.module)
        return cable

    # ---- parameters (live too: applied at the next evaluation)

    def set_param(self, module_id: str, name: str, value: object, now_ns: int) -> None:
        self.set_params(module_id, {name: value}, now_ns)

    def set_params(self, module_id: str, values: Mapping[str, object], now_ns: int) -> None:
        """Several parameters of one module at once: all checked together (and the module
        rebuilt once when it cannot retune), or none changed; a ParamSet each, in order."""
        if self.state is PatchState.ARCHIVED:
            raise FailedPrecondition(f"patch {self.id} is archived")
        node = self.graph.node(module_id)
        try:
            checked = node.spec.checked_params({**node.params, **values})
        except InvalidArgument as exc:
            raise _under(exc, f"{module_id}.params") from None
        module = self.modules[module_id]
        if not module.retune(checked):
            self.modules[module_id] = _build(type(module), checked, module_id)
        for name in values:
            self.graph.set_param(module_id, name, checked[name])
        self._restep.add(module_id)
        self._mark_dirty()
        for name in values:
            self._changed(ParamSet(self.id, self.version + 1, now_ns, module_id, name, checked[name]))

    # ---- name, description, market

    def update(
        self,
        now_ns: int,
        *,
        name: str | None = None,
        description: str | None = None,
        venue: str | None = None,
        symbol: str | None = None,
    ) -> None:
        """Rename, describe, or move the patch to another market (not while it is active: its
        sources and sinks that took the patch's venue or symbol take the new one, a ParamSet
        each). One PatchUpdated with the values after it; nothing when nothing changes."""
        if self.state is PatchState.ARCHIVED:
            raise FailedPrecondition(f"patch {self.id} is archived")
        venue = self.venue if venue is None else venue
        symbol = self.symbol if symbol is None else symbol
        name = self.name if name is None else name
        description = self.description if description is None else description
        if (name, description, venue, symbol) == (self.name, self.description, self.venue, self.symbol):
            return
        if (venue, symbol) != (self.venue, self.symbol):
            self._editable()
            self._follow("venue", self.venue, venue, now_ns)
            self._follow("symbol", self.symbol, symbol, now_ns)
        self.name, self.description, self.venue, self.symbol = name, description, venue, symbol
        self._changed(PatchUpdated(self.id, self.version + 1, now_ns, name, description, venue, symbol))

    def _follow(self, param: str, old: str, new: str, now_ns: int) -> None:
        """Modules whose `param` is the patch's old value (or empty) take the new one."""
        if old == new:
            return
        for module_id, node in list(self.graph.nodes.items()):
            if param in node.params and node.params[param] in ("", old):
                self.set_param(module_id, param, new, now_ns)

    # ---- lifecycle

    def activate(self, now_ns: int) -> None:
        """Validate, then start: required inputs connected, parameters in range, sources ready,
        warm-up history fed (Engine.warm)."""
        self._check_move(PatchState.ACTIVE)
        validate(self)
        self.error = None
        self._set_state(PatchState.ACTIVE, now_ns, "")

    def pause(self, now_ns: int) -> None:
        self._move(PatchState.PAUSED, now_ns)

    def archive(self, now_ns: int) -> None:
        self._move(PatchState.ARCHIVED, now_ns)

    def to_draft(self, now_ns: int) -> None:
        """An errored patch back to draft, to be fixed."""
        self._move(PatchState.DRAFT, now_ns)

    def history_needed(self) -> dict[str, int]:
        return history_needed(self)

    # ---- events

    def feed(self, module_id: str, event: Event) -> bool:
        source = self.modules[module_id]
        assert isinstance(source, Source)
        if not source.feed(event):
            return False
        self.fed(module_id, event)
        return True

    def fed(self, module_id: str, event: Event) -> None:
        """A source of the patch took an event and has a value for the next evaluation."""
        self._fed.add(module_id)
        self.dirty = True
        self._pending.add(self)
        self.last_event = event

    def feeder(self, module_id: str, source: Source) -> Callable[[Event], bool]:
        """`feed` for one source as one call (the engine's route index holds these; a change
        of the patch rebuilds the index, so a rebuilt module gets its own)."""
        take, fed, pending = source.feed, self._fed, self._pending

        def feed(event: Event) -> bool:
            if not take(event):
                return False
            fed.add(module_id)
            self.dirty = True
            pending.add(self)
            self.last_event = event
            return True

        return feed

    def warm_feed(self, module_id: str, event: Event) -> bool:
        """Feed one event of history to a source (Engine.warm)."""
        source = self.modules[module_id]
        assert isinstance(source, Source)
        if not source.warm(event):
            return False
        self._fed.add(module_id)
        self.dirty = True
        self._pending.add(self)
        self.last_event = event
        return True

    def on_tick(self, now_ns: int) -> bool:
        """The clock ticked: whether the patch has something to evaluate."""
        plan = self._plan or self._make_plan()
        for module_id, on_tick in plan.tickers:
            if on_tick(now_ns):
                self._fed.add(module_id)
                self._mark_dirty()
                source = self.modules[module_id]
                assert isinstance(source, Source)
                self.last_event = source.ticked() or self.last_event
        return self.dirty or plan.time_driven

    def last_event_ns(self) -> int:
        """The time of the latest event a source took (0 before any)."""
        return 0 if self.last_event is None else event_time(self.last_event)

    def clock_driven(self) -> bool:
        """Whether a clock tick can give the patch work (a time-driven module, or a source
        that closes bars by time)."""
        plan = self._plan or self._make_plan()
        return plan.ticks

    @property
    def values(self) -> Mapping[Endpoint, Value]:
        """The value on each output port (None until its module answers one)."""
        return self._values

    # ---- probes

    def probe(self, port: str, rate_hz: float, now_ns: int) -> Endpoint:
        """Probe an output port ("module.output", or a cable's text: its source is probed)."""
        end = Cable.parse(port, "probe").source if "->" in port else Endpoint.parse(port, "probe")
        if self.graph.node(end.module).spec.output(end.port) is None:
            raise NotFound(
                f"{self.graph.node(end.module).spec.type} {end.module!r} has no output {end.port!r}"
            )
        probe = self.probes[end] = Probe(int(1_000_000_000 / rate_hz))
        probe.record(self._values.get(end), now_ns)
        self._drop_plan()  # the plan records probed ports where it writes them
        return end

    def unprobe(self, port: str) -> None:
        end = Cable.parse(port, "probe").source if "->" in port else Endpoint.parse(port, "probe")
        if self.probes.pop(end, None) is None:
            raise NotFound(f"no probe on {end}")
        self._drop_plan()

    # ---- evaluation

    def evaluate(
        self,
        now_ns: int,
        timer: Timer,
        budget_ns: int,
        *,
        ticking: bool = False,
        emit: bool = True,
        into: Evaluation | None = None,
    ) -> Evaluation:
        """Walk the evaluation order once; what it emitted (nothing when not `emit`: warm-up),
        added to `into` when given."""
        result = Evaluation() if into is None else into
        if emit:
            self.run(now_ns, timer, budget_ns, ticking, result)
        else:  # warm-up: every step timed, as any evaluation but a live one
            result.evaluations += 1
            plan = self._plan or self._make_plan()
            plan.watched(now_ns, ticking, False, timer, budget_ns, result)
        return result

    def run(self, now_ns: int, timer: Timer, budget_ns: int, ticking: bool, result: Evaluation) -> None:
        """A live evaluation into `result` (the engine calls `live` itself: one call less)."""
        self.live(now_ns, timer, budget_ns, ticking, result)

    def _live_first(
        self, now_ns: int, timer: Timer, budget_ns: int, ticking: bool, result: Evaluation
    ) -> None:
        self._make_plan().live(now_ns, timer, budget_ns, ticking, result)

    def _collect(
        self, module_id: str, drafts: list[SignalDraft | PositionDraft], now_ns: int, result: Evaluation
    ) -> None:
        for draft in drafts:
            self.sequence += 1
            made_id = emission_id(self.id, self.version, now_ns, self.sequence)
            if isinstance(draft, SignalDraft):
                result.signals.append(self._signal(made_id, module_id, draft, now_ns))
            else:
                result.positions.append(self._position(made_id, module_id, draft, now_ns))

    def _signal(self, signal_id: str, module_id: str, draft: SignalDraft, now_ns: int) -> EmittedSignal:
        s = draft.signal
        return EmittedSignal(
            signal_id,
            self.strategy_id,
            self.id,
            self.version,
            module_id,
            draft.venue,
            draft.symbol,
            s.direction,
            s.conviction,
            s.score,
            s.threshold,
            s.rules,
            self.last_event_ns(),
            now_ns,
        )

    def _position(
        self, request_id: str, module_id: str, draft: PositionDraft, now_ns: int
    ) -> PositionRequest:
        return PositionRequest(
            request_id,
            self.strategy_id,
            self.id,
            self.version,
            module_id,
            draft.venue,
            draft.symbol,
            draft.action,
            draft.side,
            draft.fraction,
            self.last_event_ns(),
            now_ns,
        )

    def _fail(self, module_id: str, exc: Exception, now_ns: int, result: Evaluation) -> None:
        node = self.graph.nodes.get(module_id)
        where = f"{module_id} ({node.spec.type})" if node is not None else "the patch"
        text = f"{where}: {type(exc).__name__}: {exc}"
        self.error = text if len(text) <= _ERROR_CHARS else f"{text[:_ERROR_CHARS]}..."
        self._fed.clear()
        self.dirty = False
        change = self._set_state(PatchState.ERRORED, now_ns, self.error)
        result.states.append(change)

    def _drop_plan(self) -> None:
        self._plan = None
        self.live = self._live_first

    def _mark_dirty(self) -> None:
        self.dirty = True
        self._pending.add(self)

    def _make_plan(self) -> Plan:
        plan = self._plan = build_plan(self, self._values, compiled=self.compiled)
        self._values = plan.values
        self.watch = WATCHED_EVALUATIONS
        self.live = plan.live
        return plan

    # ---- internals

    def _placed(self, params: tuple[Param, ...], given: Mapping[str, object]) -> dict[str, object]:
        """Params with `venue`, `symbol` and `strategy` left empty set to the patch's own."""
        placed = dict(given)
        names = {param.name for param in params}
        for name, value in (("venue", self.venue), ("symbol", self.symbol), ("strategy", self.strategy_id)):
            if name in names and value and not placed.get(name):
                placed[name] = value
        return placed

    def _editable(self) -> None:
        if self.state not in EDITABLE:
            raise FailedPrecondition(
                f"patch {self.id} is {self.state.value}: pause it to change modules or cables"
            )

    def _check_move(self, new: PatchState) -> None:
        if not allowed(self.state, new):
            raise FailedPrecondition(f"patch {self.id} cannot go from {self.state.value} to {new.value}")

    def _move(self, new: PatchState, now_ns: int) -> None:
        self._check_move(new)
        self._set_state(new, now_ns, "")

    def _set_state(self, new: PatchState, now_ns: int, reason: str) -> StateChanged:
        change = StateChanged(self.id, self.version, now_ns, self.state.value, new.value, reason)
        self.state = new
        self._record(change)
        return change

    def _changed(self, change: Change) -> None:
        """A change of structure or parameters: the version moves on, the plan is redone."""
        self.version += 1
        self._drop_plan()
        self._record(change)

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        if self._on_change is not None:
            self._on_change(change)


def _build(
    module_class: type[Module], params: Mapping[str, int | float | bool | str], module_id: str
) -> Module:
    """An instance; a refusal of its __init__ (e.g. low above high) named as the module's."""
    try:
        return module_class(params)
    except InvalidArgument as exc:
        raise _under(exc, f"{module_id}.params") from None


def _under(exc: InvalidArgument, prefix: str) -> InvalidArgument:
    return InvalidArgument([type(v)(f"{prefix}.{v.field}", v.description) for v in exc.violations])
