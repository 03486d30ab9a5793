"""The engine: every patch, events routed to their sources, coalesced evaluation, clock ticks,
warm-up and probes. Pure: the shell gives it events, the time and a timer, and takes its
outputs (signals, position requests, probe updates, change events).

Coalescing: an event only feeds the sources that take it (cheap) and marks their patches
dirty; `evaluate_due` (the shell calls it when its event queue is drained) evaluates each
dirty patch once, never a queue of stale evaluations. The exception is closed bars: a patch
whose bar source closed several bars at once is evaluated once per bar, so bar indicators see
every bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.changes import Change, ParamSet, PatchDeleted, StateChanged
from trademesh.core.detector.engine.io import (
    Event,
    ExternalValue,
    PositionValue,
    RegimeValue,
    Route,
    Source,
    event_route,
    event_time,
    position_key,
)
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.outputs import Evaluation, ProbeUpdate
from trademesh.core.detector.engine.patch import Patch, Timer
from trademesh.core.detector.engine.values import BarValue, BookValue, TradeValue
from trademesh.core.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, shown

__all__ = ["Engine", "EngineConfig"]


@dataclass(frozen=True)
class EngineConfig:
    # Probe updates per second at most, per probe.
    probe_rate_hz: float = 30.0
    # A module step slower than this is reported (SlowModule).
    module_budget_ns: int = 1_000_000
    # How often the shell should call tick() (the core only handles the ticks it is given).
    tick_hz: float = 10.0
    # Patches evaluate through their compiled plans; False: the reference walk (every module
    # through step(Inputs), slower: for tests and for debugging a module).
    compiled_plans: bool = True

    def __post_init__(self) -> None:
        for name in ("probe_rate_hz", "module_budget_ns", "tick_hz"):
            if not getattr(self, name) > 0:
                raise InvalidArgument.field(name, "must be above 0")


# A source of a patch: (its venue, "" for any; the patch; Patch.feeder of the source).
_Target = tuple[str, Patch, Callable[[Event], bool]]
_KINDS: dict[type, str] = {TradeValue: "trade", BookValue: "book", BarValue: "bar"}
# What the shell is told from outside (the inspector's risk state, the strategies' positions,
# the markets' regimes) is a state, not a stream: told only when it changes, so the latest of
# each route is kept and told again to a patch that starts (or whose source is rebuilt) after it was.
_TOLD = frozenset({"external", "position", "regime"})


class Engine:
    def __init__(self, catalog: Catalog, timer: Timer, config: EngineConfig | None = None) -> None:
        self.catalog = catalog
        self.timer = timer
        self.config = config or EngineConfig()
        self.patches: dict[str, Patch] = {}
        # Route -> the sources taking it; None after any change (a rebuilt module is a new
        # source).
        self._index: dict[str, dict[str, list[_Target]]] | None = None
        self._changes: list[Change] = []
        # Patches that may be dirty (each puts itself here when it becomes so): evaluate_due
        # visits these, in the order of `patches`, not every patch.
        self._pending: set[Patch] = set()
        # The active patches a clock tick can move, in order; None after any change.
        self._clocked: list[Patch] | None = None
        # Creation order: `patches` order, to visit pending patches in.
        self._rank: dict[Patch, int] = {}
        self._created = 0
        self._told: dict[Route, Event] = {}  # the latest external value, position, regime per route
        # Markets their venue delisted (on_listing): nothing is emitted for them.
        self.delisted: set[tuple[str, str]] = set()

    # ---- patches

    def create_patch(
        self,
        patch_id: str,
        strategy_id: str,
        now_ns: int,
        *,
        venue: str = "",
        symbol: str = "",
        warmup: int = 0,
        name: str = "",
        description: str = "",
    ) -> Patch:
        if patch_id in self.patches:
            raise AlreadyExists(f"patch {shown(patch_id)} exists already")
        patch = Patch(
            patch_id,
            strategy_id,
            self.catalog,
            now_ns,
            venue=venue,
            symbol=symbol,
            warmup=warmup,
            name=name,
            description=description,
            on_change=self._changed,
            compiled=self.config.compiled_plans,
            pending=self._pending,
        )
        self.patches[patch_id] = patch
        self._created += 1
        self._rank[patch] = self._created
        return patch

    def delete_patch(self, patch_id: str, now_ns: int) -> None:
        """Remove a patch that is not active (pause it first); a PatchDeleted change."""
        patch = self.patch(patch_id)
        if patch.state is PatchState.ACTIVE:
            raise FailedPrecondition(f"patch {shown(patch_id)} is active: pause it before deleting it")
        del self.patches[patch_id]
        del self._rank[patch]
        self._pending.discard(patch)
        self._changed(PatchDeleted(patch_id, patch.version, now_ns))

    def patch(self, patch_id: str) -> Patch:
        patch = self.patches.get(patch_id)
        if patch is None:
            raise NotFound(f"no patch {shown(patch_id)}")
        return patch

    def take_changes(self) -> list[Change]:
        """The change events since the last call, in order (each patch keeps its whole log too)."""
        changes, self._changes = self._changes, []
        return changes

    # ---- events

    def feed(self, venue: str, event: Event) -> int:
        """Route one event to the sources of active patches that take it; how many took it."""
        kind = _KINDS.get(type(event))
        if kind is None:  # external values, positions, subclasses
            kind, venue, key = event_route(venue, event)
            if kind in _TOLD:
                self._told[(kind, venue, key)] = event
        else:
            key = event.symbol  # type: ignore[union-attr]
        index = self._index if self._index is not None else self._routes()
        by_key = index.get(kind)
        targets = by_key.get(key) if by_key is not None else None
        if targets is None:
            return 0
        taken = 0
        for wanted, patch, feed in targets:
            # A source's venue "" takes every venue.
            if (wanted == venue or not wanted) and patch.state is PatchState.ACTIVE and feed(event):
                taken += 1
        return taken

    # A trade, a book, a closed bar from the bar service: `feed` itself (no wrapper call).
    on_trade = on_book = on_bar = feed

    def on_external(self, name: str, value: float | bool, ts_event_ns: int) -> int:
        return self.feed("", ExternalValue(name, value, ts_event_ns))

    def on_position(self, position: PositionValue) -> int:
        """A strategy's own position (the inspector's word), to its `strategy_position` sources."""
        return self.feed(position.venue, position)

    def position(self, strategy: str, venue: str, symbol: str) -> PositionValue | None:
        """A strategy's position in a market as last told (None: never told), whether or not a
        patch listens: what a screen-driven strategy reads before it retires a patch."""
        told = self._told.get(("position", venue, position_key(strategy, symbol)))
        return told if isinstance(told, PositionValue) else None

    def on_regime(self, regime: RegimeValue) -> int:
        """A market's regime (Overwatch's word), to its `regime` sources."""
        return self.feed(regime.venue, regime)

    def on_listing(self, venue: str, symbol: str, delisted: bool) -> None:
        """A market its venue delisted (`delisted`), or listed again: while delisted, the signals
        and position requests of every patch for it are withheld (counted in `withheld`); its
        patches go on evaluating (their state stays warm for a listing again)."""
        if delisted:
            self.delisted.add((venue, symbol))
        else:
            self.delisted.discard((venue, symbol))

    # ---- evaluation

    def evaluate_due(self, now_ns: int) -> Evaluation:
        """Evaluate every dirty active patch once (plus once per extra closed bar)."""
        result = Evaluation()
        pending = self._pending
        if not pending:
            return result
        timer, budget = self.timer, self.config.module_budget_ns
        for patch in pending.copy() if len(pending) == 1 else self._in_order(pending):
            while patch.dirty and patch.state is PatchState.ACTIVE:
                patch.live(now_ns, timer, budget, False, result)
            if not patch.dirty:
                pending.discard(patch)
        return self._withheld(result)

    def _withheld(self, result: Evaluation) -> Evaluation:
        """The result, its outputs for delisted markets left out."""
        delisted = self.delisted
        if not delisted:
            return result
        signals = [s for s in result.signals if (s.venue, s.symbol) not in delisted]
        positions = [p for p in result.positions if (p.venue, p.symbol) not in delisted]
        result.withheld += len(result.signals) - len(signals) + len(result.positions) - len(positions)
        result.signals, result.positions = signals, positions
        return result

    def tick(self, now_ns: int) -> Evaluation:
        """The clock: sources may close bars by time, time-driven modules step."""
        result = Evaluation()
        timer, budget = self.timer, self.config.module_budget_ns
        # A patch the clock cannot move (no time-driven module, no source closing bars by
        # time) and with nothing waiting is skipped: on_tick would answer False.
        visit = self._clocked if self._clocked is not None else self._clock_driven()
        pending = self._pending
        if pending:
            visit = self._in_order(pending.union(visit))
        for patch in visit:
            if patch.state is PatchState.ACTIVE and patch.on_tick(now_ns):
                patch.live(now_ns, timer, budget, True, result)
                while patch.dirty and patch.state is PatchState.ACTIVE:  # more bars closed at once
                    patch.live(now_ns, timer, budget, False, result)
            if not patch.dirty:
                pending.discard(patch)
        return self._withheld(result)

    def ticks_matter(self) -> bool:
        """Whether a tick now could move anything: an active patch the clock drives, or one
        with work waiting. A shell may skip ticks while it is False (a backtest does)."""
        clocked = self._clocked if self._clocked is not None else self._clock_driven()
        return bool(clocked) or bool(self._pending)

    def _in_order(self, patches: set[Patch]) -> list[Patch]:
        """These patches in the order of `patches` (creation)."""
        if len(patches) == 1:
            return list(patches)
        return sorted(patches, key=self._rank.__getitem__)

    def _clock_driven(self) -> list[Patch]:
        clocked = [p for p in self.patches.values() if p.state is PatchState.ACTIVE and p.clock_driven()]
        self._clocked = clocked
        return clocked

    # ---- warm-up

    def history_needed(self, patch_id: str) -> dict[str, int]:
        """Per source module id of the patch: how many values of history it needs."""
        return self.patch(patch_id).history_needed()

    def warm(self, patch_id: str, history: Iterable[tuple[str, Event]]) -> None:
        """Feed history (venue, event), oldest first, through a patch that is not active yet:
        every module steps as it would live, nothing is emitted."""
        patch = self.patch(patch_id)
        if patch.state is PatchState.ACTIVE:
            raise FailedPrecondition(f"patch {patch_id} is active: warm it up before activating it")
        sources = [(m, s.warm_routes()) for m, s in patch.modules.items() if isinstance(s, Source)]
        for venue, event in history:
            kind, _, key = event_route(venue, event)
            fed = [patch.warm_feed(m, event) for m, routes in sources if _takes(routes, kind, venue, key)]
            while any(fed) and patch.dirty and patch.state is not PatchState.ERRORED:
                patch.evaluate(event_time(event), self.timer, self.config.module_budget_ns, emit=False)

    # ---- probes

    def probe(self, patch_id: str, port: str, now_ns: int) -> str:
        """Probe an output port ("module.output" or a cable's text); its name. Its current value
        is the first update."""
        return str(self.patch(patch_id).probe(port, self.config.probe_rate_hz, now_ns))

    def unprobe(self, patch_id: str, port: str) -> None:
        self.patch(patch_id).unprobe(port)

    def probe_updates(self, now_ns: int) -> list[ProbeUpdate]:
        """The latest value of every probe that changed and whose rate allows an update now."""
        return [
            ProbeUpdate(patch.id, str(end), probe.value, probe.at_ns)
            for patch in self.patches.values()
            for end, probe in patch.probes.items()
            if probe.due(now_ns)
        ]

    # ---- internals

    def _changed(self, change: Change) -> None:
        self._changes.append(change)
        self._index = None
        self._clocked = None
        started = isinstance(change, StateChanged) and change.new == PatchState.ACTIVE.value
        if started or isinstance(change, ParamSet):
            self._retell(change.patch_id)

    def _retell(self, patch_id: str) -> None:
        """An active patch's sources of told values get the latest of each (a patch started,
        or a source rebuilt, after the value was told would not hear it until it changed)."""
        patch = self.patches.get(patch_id)
        if patch is None or patch.state is not PatchState.ACTIVE or not self._told:
            return
        for module_id, source in patch.modules.items():
            if not isinstance(source, Source):
                continue
            routes = source.routes()
            for (kind, venue, key), event in self._told.items():
                if _takes(routes, kind, venue, key):
                    patch.feed(module_id, event)

    def _routes(self) -> dict[str, dict[str, list[_Target]]]:
        if self._index is None:
            index: dict[str, dict[str, list[_Target]]] = {}
            for patch in self.patches.values():
                for module_id, source in patch.modules.items():
                    if isinstance(source, Source):
                        for kind, venue, key in source.routes():
                            targets = index.setdefault(kind, {}).setdefault(key, [])
                            targets.append((venue, patch, patch.feeder(module_id, source)))
            self._index = index
        return self._index


def _takes(routes: tuple[Route, ...], kind: str, venue: str, key: str) -> bool:
    return any(r[0] == kind and r[2] == key and r[1] in ("", venue) for r in routes)
