"""The detector's gRPC API (trademesh.patch.v1.Patch) over the engine the shell runs.

The shell gives the servicer a `DetectorState` (the Protocol below): the engine, the journal
(trademesh.core.detector.patch_journal: persists and publishes every change), its clock, a pulse it bumps
after each evaluation, the latest signals, per-patch activity and a warm-up step. Every
handler runs on the shell's event loop, so an edit never interleaves with an evaluation.

Errors are trademesh.core.platform.errors types, mapped to statuses by trademesh.core.platform.rpc's edge: an
unknown patch is NOT_FOUND naming it; a bad module type, port, cable (different types, a cycle:
the path) or parameter is INVALID_ARGUMENT with field violations named after the request's fields
(`type`, `params.period`, `cable.to_port`); a structure edit of an active patch, and an
activation that fails validation, are FAILED_PRECONDITION (the latter with every reason as a
google.rpc.PreconditionFailure violation). After every edit the journal is flushed: the
change is persisted and streamed before the answer goes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from trademesh.core.detector.convert import (
    catalog_to_pb,
    patch_state,
    patch_to_pb,
    probe_value_to_pb,
    python_value,
    signal_to_pb,
    state_to_pb,
    summary_to_pb,
)
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.graph import Cable, Endpoint, check_id
from trademesh.core.detector.engine.lifecycle import PatchState, allowed
from trademesh.core.detector.engine.module import ModuleSpec
from trademesh.core.detector.engine.outputs import EmittedSignal
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.detector.engine.warmup import history_needed, validate
from trademesh.core.detector.patch_journal import PatchJournal, Pulse
from trademesh.core.detector.probe_hub import ProbeHub
from trademesh.core.detector.strategy_file import build_patches, parse_strategy
from trademesh.core.platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    shown,
)
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = [
    "SERVICE_NAME",
    "DetectorState",
    "ModuleTiming",
    "PatchActivity",
    "PatchServicer",
    "patch_service",
]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Patch"].full_name
_PATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}\Z")
MAX_PROBE_RATE = 30
DEFAULT_SIGNALS, MAX_SIGNALS = 50, 1000
STATUS_INTERVAL_S = 1.0
# A stream re-checks this often even without a pulse (a probe update held by the engine's rate).
_IDLE_WAIT_S = 0.05


@dataclass(frozen=True)
class ModuleTiming:
    """One module's step times over the last second."""

    module_id: str
    mean_us: float
    max_us: float
    over_budget: bool


@dataclass(frozen=True)
class PatchActivity:
    """What the shell measured of one patch (StreamStrategyStatus)."""

    evaluations_per_s: float = 0.0
    # (module id, message): recent errors. A slow module is not one: it is a timing.
    errors: tuple[tuple[str, str], ...] = ()
    # The modules slower than their budget, each once.
    timings: tuple[ModuleTiming, ...] = ()
    # None: the newest of recent_signals for the patch is shown.
    last_signal: EmittedSignal | None = None


class DetectorState(Protocol):
    """What the shell gives the API."""

    @property
    def engine(self) -> Engine:
        """The engine the shell evaluates."""

    @property
    def journal(self) -> PatchJournal:
        """Takes, persists and publishes the engine's changes (the shell flushes it after every
        evaluate_due/tick too, so errors reach the log and the streams)."""

    @property
    def pulse(self) -> Pulse:
        """Bumped by the shell after every evaluation: wakes probe streams."""

    @property
    def recent_signals(self) -> Sequence[EmittedSignal]:
        """The last N signals emitted, oldest first (a deque(maxlen=N))."""

    def now_ns(self) -> int:
        """The shell's clock (the time it gives the engine)."""

    def status(self) -> Mapping[str, PatchActivity]:
        """Activity by patch id (a patch left out shows zeros)."""

    async def warm_up(self, patch_id: str) -> None:
        """Feed the patch the history it needs (Engine.history_needed, Engine.warm), as far as
        there is history; called by ActivatePatch when the patch is complete but not warm."""

    async def check_market(self, venue: str, symbol: str) -> None:
        """NotFound naming a venue the detector does not follow, InvalidArgument naming a symbol
        its venue does not list: a patch on either would be fed nothing (ActivatePatch refuses it)."""


class PatchServicer(pb_grpc.PatchServicer):
    def __init__(self, state: DetectorState) -> None:
        self.state = state
        self.probes = ProbeHub(state.engine)

    @property
    def engine(self) -> Engine:
        return self.state.engine

    # ---- catalog and reading

    async def GetCatalog(
        self, request: pb.GetCatalogRequest, context: Context[pb.GetCatalogRequest, pb.GetCatalogResponse]
    ) -> pb.GetCatalogResponse:
        return pb.GetCatalogResponse(modules=catalog_to_pb(self.engine.catalog))

    async def ListPatches(
        self, request: pb.ListPatchesRequest, context: Context[pb.ListPatchesRequest, pb.ListPatchesResponse]
    ) -> pb.ListPatchesResponse:
        states = {patch_state(value, f"states[{i}]") for i, value in enumerate(request.states)}
        wanted = states or set(PatchState) - {PatchState.ARCHIVED}
        patches = sorted((p for p in self.engine.patches.values() if p.state in wanted), key=lambda p: p.id)
        return pb.ListPatchesResponse(patches=[summary_to_pb(p) for p in patches])

    async def GetPatch(
        self, request: pb.GetPatchRequest, context: Context[pb.GetPatchRequest, pb.GetPatchResponse]
    ) -> pb.GetPatchResponse:
        return pb.GetPatchResponse(patch=patch_to_pb(self._patch(request.patch_id)))

    # ---- patches

    async def CreatePatch(
        self, request: pb.CreatePatchRequest, context: Context[pb.CreatePatchRequest, pb.CreatePatchResponse]
    ) -> pb.CreatePatchResponse:
        from_file = bool(request.strategy_toml)
        made = self._create_from_file(request) if from_file else [self._create_empty(request)]
        await self._persist()
        graphs = [patch_to_pb(patch) for patch in made]
        return pb.CreatePatchResponse(patch=graphs[0], patches=graphs)

    def _create_empty(self, request: pb.CreatePatchRequest) -> Patch:
        patch_id = _new_patch_id(request.patch_id)
        venue, symbol = _market(request.markets)
        if patch_id in self.engine.patches:
            raise AlreadyExists(f"patch {shown(patch_id)} exists already")
        return self.engine.create_patch(
            patch_id,
            patch_id,
            self.state.now_ns(),
            venue=venue,
            symbol=symbol,
            name=request.name,
            description=request.description,
        )

    def _create_from_file(self, request: pb.CreatePatchRequest) -> list[Patch]:
        """One patch per venue and symbol of the file (venues, then symbols)."""
        try:
            strategy = parse_strategy(request.strategy_toml, "strategy_toml", self.engine.catalog)
        except InvalidArgument as exc:
            raise _refield(exc, lambda field: f"strategy_toml.{field}") from None
        if strategy.screen is not None:
            raise InvalidArgument.field(
                "strategy_toml.symbols",
                "a screen's symbols are followed by a detector running the file (--strategy); "
                "here, list the symbols",
            )
        ids = [f"{strategy.id}/{venue}/{symbol}" for venue in strategy.venues for symbol in strategy.symbols]
        for patch_id in ids:
            _new_patch_id(patch_id, "strategy_toml.id")
            if patch_id in self.engine.patches:
                raise AlreadyExists(f"patch {shown(patch_id)} exists already")
        made = build_patches(self.engine, strategy, self.state.now_ns())
        for patch in made:
            patch.name = request.name or strategy.id
            patch.description = strategy.description or request.description
        return made

    async def UpdatePatch(
        self, request: pb.UpdatePatchRequest, context: Context[pb.UpdatePatchRequest, pb.UpdatePatchResponse]
    ) -> pb.UpdatePatchResponse:
        patch = self._patch(request.patch_id)
        venue, symbol = _market(request.markets) if request.markets else (None, None)
        patch.update(
            self.state.now_ns(),
            name=request.name or None,
            description=request.description or None,
            venue=venue,
            symbol=symbol,
        )
        await self._persist()
        return pb.UpdatePatchResponse(patch=patch_to_pb(patch))

    async def DeletePatch(
        self, request: pb.DeletePatchRequest, context: Context[pb.DeletePatchRequest, pb.DeletePatchResponse]
    ) -> pb.DeletePatchResponse:
        patch = self._patch(request.patch_id)
        self.engine.delete_patch(patch.id, self.state.now_ns())
        await self._persist()
        return pb.DeletePatchResponse()

    # ---- graph edits

    async def AddModule(
        self, request: pb.AddModuleRequest, context: Context[pb.AddModuleRequest, pb.AddModuleResponse]
    ) -> pb.AddModuleResponse:
        patch = self._patch(request.patch_id)
        _required("module_id", request.module_id)
        module_id = check_id(request.module_id, "module_id")
        _required("type", request.type)
        module_class = self.engine.catalog.types.get(request.type)
        if module_class is None:
            raise InvalidArgument.field("type", f"no module type {shown(request.type)} in the catalog")
        params = _params(module_class.spec, request.params)
        with _fields(module_id):
            patch.add_module(module_id, request.type, params, self.state.now_ns())
        await self._persist()
        return pb.AddModuleResponse(patch=patch_to_pb(patch))

    async def RemoveModule(
        self,
        request: pb.RemoveModuleRequest,
        context: Context[pb.RemoveModuleRequest, pb.RemoveModuleResponse],
    ) -> pb.RemoveModuleResponse:
        patch = self._patch(request.patch_id)
        _required("module_id", request.module_id)
        patch.remove_module(request.module_id, self.state.now_ns())
        await self._persist()
        return pb.RemoveModuleResponse(patch=patch_to_pb(patch))

    async def ConnectCable(
        self,
        request: pb.ConnectCableRequest,
        context: Context[pb.ConnectCableRequest, pb.ConnectCableResponse],
    ) -> pb.ConnectCableResponse:
        patch = self._patch(request.patch_id)
        cable = _cable(patch, request.cable, check_ports=True)
        with _fields("", cable_field="cable"):
            patch.connect(cable, self.state.now_ns())
        await self._persist()
        return pb.ConnectCableResponse(patch=patch_to_pb(patch))

    async def DisconnectCable(
        self,
        request: pb.DisconnectCableRequest,
        context: Context[pb.DisconnectCableRequest, pb.DisconnectCableResponse],
    ) -> pb.DisconnectCableResponse:
        patch = self._patch(request.patch_id)
        cable = _cable(patch, request.cable, check_ports=False)
        patch.disconnect(cable, self.state.now_ns())
        await self._persist()
        return pb.DisconnectCableResponse(patch=patch_to_pb(patch))

    async def SetParams(
        self, request: pb.SetParamsRequest, context: Context[pb.SetParamsRequest, pb.SetParamsResponse]
    ) -> pb.SetParamsResponse:
        patch = self._patch(request.patch_id)
        _required("module_id", request.module_id)
        node = patch.graph.node(request.module_id)
        if not request.params:
            raise InvalidArgument.field("params", "is empty: name the parameters to change")
        params = _params(node.spec, request.params)
        with _fields(request.module_id):
            patch.set_params(request.module_id, params, self.state.now_ns())
        await self._persist()
        return pb.SetParamsResponse(patch=patch_to_pb(patch))

    # ---- lifecycle

    async def ActivatePatch(
        self,
        request: pb.ActivatePatchRequest,
        context: Context[pb.ActivatePatchRequest, pb.ActivatePatchResponse],
    ) -> pb.ActivatePatchResponse:
        patch = self._patch(request.patch_id)
        if not allowed(patch.state, PatchState.ACTIVE):
            raise FailedPrecondition(
                f"patch {shown(patch.id)} is {patch.state.value}: it cannot be activated"
            )
        _check_complete(patch)
        if patch.venue and patch.symbol:
            await self.state.check_market(patch.venue, patch.symbol)
        if not _warm(patch):
            await self.state.warm_up(patch.id)
        patch.activate(self.state.now_ns())
        await self._persist()
        return pb.ActivatePatchResponse(patch=patch_to_pb(patch))

    async def PausePatch(
        self, request: pb.PausePatchRequest, context: Context[pb.PausePatchRequest, pb.PausePatchResponse]
    ) -> pb.PausePatchResponse:
        patch = self._patch(request.patch_id)
        patch.pause(self.state.now_ns())
        await self._persist()
        return pb.PausePatchResponse(patch=patch_to_pb(patch))

    async def ArchivePatch(
        self,
        request: pb.ArchivePatchRequest,
        context: Context[pb.ArchivePatchRequest, pb.ArchivePatchResponse],
    ) -> pb.ArchivePatchResponse:
        patch = self._patch(request.patch_id)
        patch.archive(self.state.now_ns())
        await self._persist()
        return pb.ArchivePatchResponse(patch=patch_to_pb(patch))

    # ---- streams

    async def StreamProbes(
        self,
        request: pb.StreamProbesRequest,
        context: Context[pb.StreamProbesRequest, pb.StreamProbesResponse],
    ) -> AsyncIterator[pb.StreamProbesResponse]:
        patch = self._patch(request.patch_id)
        rate = request.max_updates_per_s or MAX_PROBE_RATE
        if rate > MAX_PROBE_RATE:
            raise InvalidArgument.field("max_updates_per_s", f"{rate} is above {MAX_PROBE_RATE}")
        ports = _probe_ports(patch, request.ports)
        subscriber = self.probes.subscribe(patch.id, ports, rate, self.state.now_ns())
        pulse = self.state.pulse
        try:
            while patch.id in self.engine.patches:
                seen = pulse.count
                now = self.state.now_ns()
                self.probes.drain(now)
                updates = subscriber.take_due(now)
                if updates:
                    yield pb.StreamProbesResponse(
                        updates=[
                            pb.ProbeUpdate(
                                module_id=u.port.partition(".")[0],
                                port=u.port.partition(".")[2],
                                value=probe_value_to_pb(u.value),
                                ts_ns=u.at_ns,
                            )
                            for u in updates
                        ]
                    )
                wait = subscriber.wait_s(self.state.now_ns())
                await pulse.wait(seen, _IDLE_WAIT_S if wait is None else min(wait, _IDLE_WAIT_S))
        finally:
            self.probes.unsubscribe(subscriber)

    async def StreamPatchEvents(
        self,
        request: pb.StreamPatchEventsRequest,
        context: Context[pb.StreamPatchEventsRequest, pb.StreamPatchEventsResponse],
    ) -> AsyncIterator[pb.StreamPatchEventsResponse]:
        if request.patch_id:
            self._patch(request.patch_id)
        journal = self.state.journal
        sequence = journal.sequence
        while True:
            seen = journal.pulse.count
            events, sequence = journal.events_after(sequence, request.patch_id)
            if events:
                yield pb.StreamPatchEventsResponse(events=events)
            await journal.pulse.wait(seen, 1.0)

    async def StreamStrategyStatus(
        self,
        request: pb.StreamStrategyStatusRequest,
        context: Context[pb.StreamStrategyStatusRequest, pb.StreamStrategyStatusResponse],
    ) -> AsyncIterator[pb.StreamStrategyStatusResponse]:
        for index, patch_id in enumerate(request.patch_ids):
            if patch_id not in self.engine.patches:
                raise NotFound(f"patch_ids[{index}]: no patch {shown(patch_id)}")
        wanted = list(request.patch_ids)
        while True:
            yield pb.StreamStrategyStatusResponse(statuses=self._statuses(wanted))
            await asyncio.sleep(STATUS_INTERVAL_S)

    async def ListSignals(
        self, request: pb.ListSignalsRequest, context: Context[pb.ListSignalsRequest, pb.ListSignalsResponse]
    ) -> pb.ListSignalsResponse:
        limit = request.limit or DEFAULT_SIGNALS
        if limit > MAX_SIGNALS:
            raise InvalidArgument.field("limit", f"{limit} is above {MAX_SIGNALS}")
        found: list[sig.Signal] = []
        for signal in reversed(self.state.recent_signals):
            if len(found) == limit:
                break
            if (not request.patch_id or signal.patch_id == request.patch_id) and (
                not request.symbol or signal.symbol == request.symbol
            ):
                found.append(signal_to_pb(signal))
        return pb.ListSignalsResponse(signals=found)

    # ---- internals

    def _patch(self, patch_id: str) -> Patch:
        _required("patch_id", patch_id)
        return self.engine.patch(patch_id)

    async def _persist(self) -> None:
        await self.state.journal.flush(self.engine)

    def _statuses(self, wanted: list[str]) -> list[pb.StrategyStatus]:
        activity = self.state.status()
        patches = [self.engine.patches[i] for i in wanted if i in self.engine.patches] or [
            p
            for p in sorted(self.engine.patches.values(), key=lambda p: p.id)
            if p.state is not PatchState.ARCHIVED
        ]
        return [self._status(patch, activity.get(patch.id, PatchActivity())) for patch in patches]

    def _status(self, patch: Patch, activity: PatchActivity) -> pb.StrategyStatus:
        last = activity.last_signal or next(
            (s for s in reversed(self.state.recent_signals) if s.patch_id == patch.id), None
        )
        errors = [pb.PatchError(module_id=m, message=text) for m, text in activity.errors]
        if patch.error is not None:
            errors.insert(0, pb.PatchError(module_id=patch.error.partition(" ")[0], message=patch.error))
        return pb.StrategyStatus(
            patch_id=patch.id,
            state=state_to_pb(patch.state),
            version=patch.version,
            evaluations_per_s=activity.evaluations_per_s,
            last_signal=signal_to_pb(last) if last is not None else None,
            errors=errors,
            timings=[
                pb.ModuleTiming(
                    module_id=t.module_id, mean_us=t.mean_us, max_us=t.max_us, over_budget=t.over_budget
                )
                for t in activity.timings
            ],
            warm=_warm(patch),
        )


def patch_service(state: DetectorState) -> Service:
    """The Patch service for trademesh.core.platform.rpc.server.create_server."""
    return Service(SERVICE_NAME, PatchServicer(state), pb_grpc.add_PatchServicer_to_server)


# ---- request checks


def _required(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument.field(field, "is required")


def _new_patch_id(patch_id: str, field: str = "patch_id") -> str:
    _required(field, patch_id)
    if not _PATCH_ID.match(patch_id):
        raise InvalidArgument.field(
            field, f"{shown(patch_id)} is not a patch id (letters, digits, _ . / : -, at most 128)"
        )
    return patch_id


def _market(markets: Sequence[pb.Market]) -> tuple[str, str]:
    """The one market of a patch (none: "", "")."""
    if len(markets) > 1:
        raise InvalidArgument.field("markets", "a patch trades one market: make one patch per market")
    if not markets:
        return "", ""
    market = markets[0]
    if bool(market.venue) != bool(market.symbol):
        raise InvalidArgument.field("markets[0]", "needs both venue and symbol")
    return market.venue, market.symbol


def _params(spec: ModuleSpec, given: Mapping[str, pb.ParamValue]) -> dict[str, object]:
    """Request parameters as engine values (unknown names are left to the engine to name)."""
    kinds = {param.name: param.kind for param in spec.params}
    return {
        name: python_value(value, f"params.{name}", kinds.get(name)) for name, value in sorted(given.items())
    }


def _cable(patch: Patch, cable: pb.Cable, *, check_ports: bool) -> Cable:
    """The request's cable, each part checked against the patch: INVALID_ARGUMENT naming
    `cable.from_module` .. `cable.to_port`."""
    parts = {
        "from_module": cable.from_module,
        "from_port": cable.from_port,
        "to_module": cable.to_module,
        "to_port": cable.to_port,
    }
    for name, value in parts.items():
        _required(f"cable.{name}", value)
        check_id(value, f"cable.{name}")
    source = Endpoint(cable.from_module, cable.from_port)
    target = Endpoint(cable.to_module, cable.to_port)
    if check_ports:
        _check_end(patch, source, output=True)
        _check_end(patch, target, output=False)
        _check_types(patch, source, target)
    return Cable(source, target)


def _check_types(patch: Patch, source: Endpoint, target: Endpoint) -> None:
    out = patch.graph.nodes[source.module].spec.output(source.port)
    into = patch.graph.nodes[target.module].spec.input(target.port)
    if out is not None and into is not None and out.type is not into.type:
        raise InvalidArgument.field(
            "cable.to_port", f"{source} is {out.type.value} but {target} is {into.type.value}"
        )
    taken = patch.graph.cables.get(target)
    if taken is not None:
        raise InvalidArgument.field("cable.to_port", f"{target} is connected already ({taken})")


def _check_end(patch: Patch, end: Endpoint, *, output: bool) -> None:
    side = "from" if output else "to"
    node = patch.graph.nodes.get(end.module)
    if node is None:
        raise InvalidArgument.field(f"cable.{side}_module", f"no module {shown(end.module)} in the patch")
    ports = node.spec.outputs if output else node.spec.inputs
    if not any(port.name == end.port for port in ports):
        kind = "output" if output else "input"
        names = ", ".join(port.name for port in ports) or "none"
        raise InvalidArgument.field(
            f"cable.{side}_port",
            f"{node.spec.type} {end.module!r} has no {kind} {shown(end.port)} ({kind}s: {names})",
        )


def _probe_ports(patch: Patch, ports: Sequence[str]) -> list[str]:
    """The output ports to watch ("module.port"): each checked; every cable's source when none."""
    if not ports:
        return sorted({str(cable.source) for cable in patch.graph.cables.values()})
    found = []
    for index, text in enumerate(ports):
        field = f"ports[{index}]"
        end = Endpoint.parse(text, field)
        node = patch.graph.nodes.get(end.module)
        if node is None:
            raise InvalidArgument.field(field, f"no module {shown(end.module)} in the patch")
        if node.spec.output(end.port) is None:
            raise InvalidArgument.field(
                field, f"{node.spec.type} {end.module!r} has no output {shown(end.port)}"
            )
        found.append(str(end))
    return sorted(set(found))


def _check_complete(patch: Patch) -> None:
    """FAILED_PRECONDITION listing every reason a patch cannot run, warm-up aside."""
    try:
        validate(patch)
    except InvalidArgument as exc:
        reasons = "; ".join(f"{v.field}: {v.description}" for v in exc.violations)
        raise FailedPrecondition(f"patch {shown(patch.id)} is not ready: {reasons}", exc.violations) from None
    except FailedPrecondition:
        return  # only the warm-up is missing


def _warm(patch: Patch) -> bool:
    return all(patch.warmed.get(m, 0) >= need for m, need in history_needed(patch).items())


class _fields:
    """Re-raise the engine's InvalidArgument with the request's field names: "<module>.type"
    -> "type", "<module>.params.<name>" -> "params.<name>" (the text names the module),
    "module" -> "module_id", "cable" -> `cable_field`."""

    def __init__(self, module_id: str, cable_field: str = "cable") -> None:
        self.module_id, self.cable_field = module_id, cable_field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, InvalidArgument):
            raise InvalidArgument([self._violation(v) for v in exc.violations]) from None

    def _violation(self, v: FieldViolation) -> FieldViolation:
        prefix = f"{self.module_id}."
        if self.module_id and v.field.startswith(prefix):
            rest = v.field[len(prefix) :]
            name = rest.removeprefix("params.")
            return FieldViolation(rest, f"{self.module_id}.{name}: {v.description}")
        if v.field == "module":
            return FieldViolation("module_id", v.description)
        if v.field == "cable":
            return FieldViolation(self.cable_field, v.description)
        return v


def _refield(exc: InvalidArgument, rename: Callable[[str], str]) -> InvalidArgument:
    return InvalidArgument([FieldViolation(rename(v.field), v.description) for v in exc.violations])
