"""The detector's Patch API end to end: a real grpc.aio server (trademesh.core.platform.rpc's edge) serving
PatchServicer over a real Engine, with its patches in a real PostgreSQL database; every RPC
called through a real channel."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from tests.integration.postgres_server import database_url, new_database
from tests.integration.support import until
from trademesh.core.detector.api import PatchActivity, patch_service
from trademesh.core.detector.convert import patch_to_pb
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.outputs import EmittedSignal
from trademesh.core.detector.engine.values import TradeValue
from trademesh.core.detector.patch_journal import PatchJournal, Pulse
from trademesh.core.detector.store import PatchStore
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.core.platform.rpc.server import ServerOptions, create_server
from trademesh.core.platform.rpc.status import bad_request_violations, precondition_violations
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc

__all__ = ["database_url"]

pytestmark = pytest.mark.integration
TREND = Path("trademesh/core/detector/strategies/trend.toml").read_text()
SYMBOL = "BTC/USDT"
T = 5.0  # call timeout


def trade_at(ts_ns: int, price: float, symbol: str) -> TradeValue:
    return TradeValue(symbol, ts_ns, price, 1.0, True, f"{ts_ns}")


@dataclass
class State:
    """The shell's side, as a test drives it."""

    engine: Engine
    journal: PatchJournal
    pulse: Pulse = field(default_factory=Pulse)
    recent_signals: deque[EmittedSignal] = field(default_factory=lambda: deque(maxlen=100))
    history: dict[str, list[tuple[str, Event]]] = field(default_factory=dict)

    def now_ns(self) -> int:
        return time.time_ns()

    def status(self) -> dict[str, PatchActivity]:
        return {}

    async def warm_up(self, patch_id: str) -> None:
        if patch_id in self.history:
            self.engine.warm(patch_id, self.history[patch_id])

    async def check_market(self, venue: str, symbol: str) -> None:
        return None  # the venue's instruments: the process tests' (test_detector_markets)

    async def trade(self, price: float) -> None:
        """One trade in, one evaluation, as the shell's runner does."""
        now = self.now_ns()
        self.engine.on_trade("sim", trade_at(now, price, SYMBOL))
        self.recent_signals.extend(self.engine.evaluate_due(now).signals)
        self.pulse.bump()
        await self.journal.flush(self.engine)


@dataclass
class Api:
    state: State
    stub: pb_grpc.PatchAsyncStub
    channel: grpc.aio.Channel
    url: str


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with new_database(database_url, "det") as url:
        store = await PatchStore.open(url, "test")
        state = State(Engine(Catalog.builtin(), time.perf_counter_ns), PatchJournal(store))
        served = await create_server([patch_service(state)], ServerOptions())
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{served.port}")
        try:
            stub: pb_grpc.PatchAsyncStub = pb_grpc.PatchStub(channel)
            yield Api(state, stub, channel, url)
        finally:
            await channel.close()
            await served.server.stop(None)
            await store.close()


def code(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> grpc.StatusCode:
    return caught.value.code()


async def signal_patch(
    stub: pb_grpc.PatchAsyncStub, patch_id: str, connect_emit: bool = True
) -> pb.PatchGraph:
    """trades -> price > 100 -> score -> signal, on sim BTC/USDT."""
    market = pb.Market(venue="sim", symbol=SYMBOL)
    await stub.CreatePatch(
        pb.CreatePatchRequest(patch_id=patch_id, name="Breakout", markets=[market]), timeout=T
    )
    for module_id, type_name, params in [
        ("t", "trades", {}),
        ("f", "trade_fields", {}),
        ("c", "compare", {"op": pb.ParamValue(text_value=">"), "value": pb.ParamValue(float_value=100.0)}),
        ("s", "weighted_score", {"threshold": pb.ParamValue(float_value=1.0)}),
        ("e", "signal", {}),
    ]:
        await stub.AddModule(
            pb.AddModuleRequest(patch_id=patch_id, module_id=module_id, type=type_name, params=params),
            timeout=T,
        )
    cables = [("t", "trade", "f", "trade"), ("f", "price", "c", "a"), ("c", "out", "s", "rule_1")]
    if connect_emit:
        cables.append(("s", "signal", "e", "signal"))
    graph = pb.PatchGraph()
    for a, b, c, d in cables:
        cable = pb.Cable(from_module=a, from_port=b, to_module=c, to_port=d)
        graph = (
            await stub.ConnectCable(pb.ConnectCableRequest(patch_id=patch_id, cable=cable), timeout=T)
        ).patch
    return graph


async def test_the_catalog_lists_the_built_in_types(api: Api) -> None:
    modules = (await api.stub.GetCatalog(pb.GetCatalogRequest(), timeout=T)).modules
    types = {m.type: m for m in modules}
    assert {"ema", "weighted_score", "trades", "signal", "rsi", "compare"} <= set(types)
    assert types["ema"].params[0].default_value.int_value == 20


async def test_a_strategy_file_makes_one_patch_per_market(api: Api) -> None:
    made = await api.stub.CreatePatch(pb.CreatePatchRequest(strategy_toml=TREND), timeout=T)
    ids = [p.patch_id for p in made.patches]
    assert ids == ["trend/sim/BTC/USDT", "trend/sim/ETH/USDT"] and made.patch.patch_id == ids[0]
    graph = made.patch
    assert graph.state == pb.PATCH_STATE_DRAFT and graph.strategy_id == "trend" and graph.warmup_bars >= 30
    assert {m.module_id for m in graph.modules} >= {"bars", "fast", "slow", "score", "emit"}
    assert len(graph.cables) == 12 and graph.evaluation_order[0] == "bars"
    listed = await api.stub.ListPatches(pb.ListPatchesRequest(), timeout=T)
    assert [p.patch_id for p in listed.patches] == ids
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.CreatePatch(pb.CreatePatchRequest(strategy_toml=TREND), timeout=T)
    assert code(caught) == grpc.StatusCode.ALREADY_EXISTS
    bad = TREND.replace("params = { period = 12 }", "params = { period = 0 }")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.CreatePatch(
            pb.CreatePatchRequest(strategy_toml=bad.replace('"trend"', '"t2"')), timeout=T
        )
    assert code(caught) == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(caught.value)[0][0] == "strategy_toml.modules.fast.params.period"


async def test_graph_edits_refuse_cycles_and_type_mismatches_leaving_the_graph_as_it_was(api: Api) -> None:
    stub = api.stub
    await signal_patch(stub, "p")
    for module_id in ("x", "y"):
        await stub.AddModule(pb.AddModuleRequest(patch_id="p", module_id=module_id, type="abs"), timeout=T)
    cable = pb.Cable(from_module="x", from_port="out", to_module="y", to_port="a")
    before = (await stub.ConnectCable(pb.ConnectCableRequest(patch_id="p", cable=cable), timeout=T)).patch
    back = pb.Cable(from_module="y", from_port="out", to_module="x", to_port="a")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ConnectCable(pb.ConnectCableRequest(patch_id="p", cable=back), timeout=T)
    assert code(caught) == grpc.StatusCode.INVALID_ARGUMENT
    [(name, text)] = bad_request_violations(caught.value)
    assert name == "cable" and "would close a cycle: y.out -> x.a -> x.out -> y.a" in text
    mismatch = pb.Cable(from_module="c", from_port="out", to_module="x", to_port="a")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ConnectCable(pb.ConnectCableRequest(patch_id="p", cable=mismatch), timeout=T)
    assert bad_request_violations(caught.value) == [("cable.to_port", "c.out is boolean but x.a is number")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddModule(pb.AddModuleRequest(patch_id="p", module_id="z", type="nope"), timeout=T)
    assert bad_request_violations(caught.value)[0][0] == "type"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        period = {"period": pb.ParamValue(text_value="ten")}
        await stub.AddModule(
            pb.AddModuleRequest(patch_id="p", module_id="z", type="ema", params=period), timeout=T
        )
    [(name, text)] = bad_request_violations(caught.value)
    assert name == "params.period" and text.startswith("z.period:")
    after = (await stub.GetPatch(pb.GetPatchRequest(patch_id="p"), timeout=T)).patch
    assert after == before
    removed = await stub.RemoveModule(pb.RemoveModuleRequest(patch_id="p", module_id="y"), timeout=T)
    assert removed.patch.version == before.version + 1 and len(removed.patch.cables) == len(before.cables) - 1


async def test_params_bump_the_version_and_structure_edits_of_an_active_patch_are_refused(api: Api) -> None:
    stub = api.stub
    graph = await signal_patch(stub, "p")
    changed = await stub.SetParams(
        pb.SetParamsRequest(patch_id="p", module_id="c", params={"value": pb.ParamValue(int_value=105)}),
        timeout=T,
    )
    assert changed.patch.version == graph.version + 1
    assert next(m for m in changed.patch.modules if m.module_id == "c").params["value"].float_value == 105.0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        bad = {"op": pb.ParamValue(bool_value=True)}
        await stub.SetParams(pb.SetParamsRequest(patch_id="p", module_id="c", params=bad), timeout=T)
    [(name, text)] = bad_request_violations(caught.value)
    assert name == "params.op" and "c.op" in text
    await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddModule(pb.AddModuleRequest(patch_id="p", module_id="z", type="abs"), timeout=T)
    assert code(caught) == grpc.StatusCode.FAILED_PRECONDITION and "pause it" in (
        caught.value.details() or ""
    )
    paused = await stub.PausePatch(pb.PausePatchRequest(patch_id="p"), timeout=T)
    assert paused.patch.state == pb.PATCH_STATE_PAUSED
    updated = await stub.UpdatePatch(
        pb.UpdatePatchRequest(
            patch_id="p", name="Renamed", markets=[pb.Market(venue="sim", symbol="ETH/USDT")]
        ),
        timeout=T,
    )
    t = next(m for m in updated.patch.modules if m.module_id == "t")
    assert updated.patch.name == "Renamed" and t.params["symbol"].text_value == "ETH/USDT"
    archived = await stub.ArchivePatch(pb.ArchivePatchRequest(patch_id="p"), timeout=T)
    assert archived.patch.state == pb.PATCH_STATE_ARCHIVED
    assert not (await stub.ListPatches(pb.ListPatchesRequest(), timeout=T)).patches
    listed = await stub.ListPatches(pb.ListPatchesRequest(states=[pb.PATCH_STATE_ARCHIVED]), timeout=T)
    assert [p.patch_id for p in listed.patches] == ["p"]
    await stub.DeletePatch(pb.DeletePatchRequest(patch_id="p"), timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetPatch(pb.GetPatchRequest(patch_id="p"), timeout=T)
    assert code(caught) == grpc.StatusCode.NOT_FOUND and "'p'" in (caught.value.details() or "")


async def test_activation_lists_what_is_missing_then_warms_up(api: Api) -> None:
    stub = api.stub
    await signal_patch(stub, "p", connect_emit=False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    assert code(caught) == grpc.StatusCode.FAILED_PRECONDITION
    assert ("e.signal", "required input is not connected") in precondition_violations(caught.value)
    period = {"period": pb.ParamValue(int_value=3)}
    await stub.AddModule(
        pb.AddModuleRequest(patch_id="p", module_id="ema", type="ema", params=period), timeout=T
    )
    for a, b, c, d in [("f", "price", "ema", "value"), ("s", "signal", "e", "signal")]:
        cable = pb.Cable(from_module=a, from_port=b, to_module=c, to_port=d)
        await stub.ConnectCable(pb.ConnectCableRequest(patch_id="p", cable=cable), timeout=T)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    assert code(caught) == grpc.StatusCode.FAILED_PRECONDITION
    assert precondition_violations(caught.value) == [("t", "needs 3 values of history and was warmed with 0")]
    now = time.time_ns()
    api.state.history["p"] = [("sim", trade_at(now - 3000 + i, 100.0 + i, SYMBOL)) for i in range(3)]
    active = await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    assert active.patch.state == pb.PATCH_STATE_ACTIVE


async def test_signals_are_listed_newest_first_and_events_streamed(api: Api) -> None:
    stub = api.stub
    await signal_patch(stub, "p")
    events = stub.StreamPatchEvents(pb.StreamPatchEventsRequest(patch_id="p"), timeout=T)
    pulse = api.state.journal.pulse

    async def open_() -> bool | None:  # the stream's handler waits for the journal's next event
        return True if pulse.waiters else None

    await until(open_, T, 0.01, "the events stream open")
    await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    first = await anext(aiter(events))
    assert [(e.kind, e.state) for e in first.events] == [
        (pb.PATCH_EVENT_KIND_STATE_CHANGED, pb.PATCH_STATE_ACTIVE)
    ]
    await stub.SetParams(
        pb.SetParamsRequest(patch_id="p", module_id="c", params={"value": pb.ParamValue(float_value=99.5)}),
        timeout=T,
    )
    second = await anext(aiter(events))
    assert (
        second.events[0].detail == "c.value = 99.5"
        and second.events[0].kind == pb.PATCH_EVENT_KIND_PARAMS_SET
    )
    events.cancel()
    for price in (90.0, 110.0, 90.0, 120.0):
        await api.state.trade(price)
    signals = (await stub.ListSignals(pb.ListSignalsRequest(), timeout=T)).signals
    assert len(signals) == 2 and signals[0].ts_signal_ns > signals[1].ts_signal_ns
    assert signals[0].symbol == SYMBOL and signals[0].conviction == "1" and signals[0].threshold == "1"
    assert signals[0].rules[0].fired and signals[0].strategy_id == "p"
    one = await stub.ListSignals(pb.ListSignalsRequest(patch_id="p", limit=1), timeout=T)
    assert [s.signal_id for s in one.signals] == [signals[0].signal_id]
    none = await stub.ListSignals(pb.ListSignalsRequest(symbol="ETH/USDT"), timeout=T)
    assert not none.signals
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListSignals(pb.ListSignalsRequest(limit=5000), timeout=T)
    assert bad_request_violations(caught.value)[0][0] == "limit"
    status = stub.StreamStrategyStatus(pb.StreamStrategyStatusRequest(patch_ids=["p"]), timeout=T)
    [found] = (await anext(aiter(status))).statuses
    status.cancel()
    assert (
        found.state == pb.PATCH_STATE_ACTIVE
        and found.warm
        and found.last_signal.signal_id == signals[0].signal_id
    )


async def test_probes_send_at_most_30_updates_a_second_per_port(api: Api) -> None:
    stub = api.stub
    await signal_patch(stub, "p")
    await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    fast = stub.StreamProbes(pb.StreamProbesRequest(patch_id="p", ports=["f.price"]), timeout=10)
    slow = stub.StreamProbes(
        pb.StreamProbesRequest(patch_id="p", ports=["f.price"], max_updates_per_s=10), timeout=10
    )
    received: dict[int, list[tuple[float, pb.ProbeUpdate]]] = {30: [], 10: []}

    async def read(
        stream: grpc.aio.UnaryStreamCall[pb.StreamProbesRequest, pb.StreamProbesResponse],
        into: list[tuple[float, pb.ProbeUpdate]],
    ) -> None:
        async for message in stream:
            into.extend((time.monotonic(), u) for u in message.updates)

    readers = [asyncio.create_task(read(fast, received[30])), asyncio.create_task(read(slow, received[10]))]

    async def subscribed() -> bool | None:  # each stream's first update is the port's current value
        return True if all(received.values()) else None

    await until(subscribed, T, 0.01, "both probe streams subscribed")
    started = time.monotonic()
    price = 100.0
    while time.monotonic() - started < 1.6:  # a new price every ~2 ms: about 800 changes
        price += 0.01
        await api.state.trade(price)
        await asyncio.sleep(0.002)
    fast.cancel()
    slow.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for rate, updates in received.items():
        assert all((u.module_id, u.port) == ("f", "price") for _, u in updates)
        window = [at for at, _ in updates if started + 0.3 <= at < started + 1.3]
        assert rate // 2 <= len(window) <= rate, (rate, len(window))
        assert updates[-1][1].value.number > 100.5  # the latest values, not the first ones

    async def unprobed() -> bool | None:  # when the streams ended
        return True if not api.state.engine.patch("p").probes else None

    await until(unprobed, T, 0.01, "the port unprobed")


async def test_patches_survive_a_restart(api: Api) -> None:
    stub = api.stub
    await stub.CreatePatch(pb.CreatePatchRequest(strategy_toml=TREND), timeout=T)
    period = {"period": pb.ParamValue(int_value=10)}
    await stub.SetParams(
        pb.SetParamsRequest(patch_id="trend/sim/BTC/USDT", module_id="fast", params=period), timeout=T
    )
    await signal_patch(stub, "p")
    await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id="p"), timeout=T)
    await stub.ArchivePatch(pb.ArchivePatchRequest(patch_id="trend/sim/ETH/USDT"), timeout=T)
    before = {i: patch_to_pb(p) for i, p in api.state.engine.patches.items()}
    store = await PatchStore.open(api.url, "test")
    try:
        engine = Engine(Catalog.builtin(), time.perf_counter_ns)
        wanted = await PatchJournal(store).restore(engine, time.time_ns())
        events = await store.events("p")
        elsewhere = await (await PatchStore.open(api.url, "other")).load_all()
    finally:
        await store.close()
    assert wanted == {
        "p": PatchState.ACTIVE,
        "trend/sim/BTC/USDT": PatchState.DRAFT,
        "trend/sim/ETH/USDT": PatchState.ARCHIVED,
    }
    after = {i: patch_to_pb(p) for i, p in engine.patches.items()}
    assert after["p"].state == pb.PATCH_STATE_PAUSED  # active again once the shell warmed it
    after["p"].state = pb.PATCH_STATE_ACTIVE
    assert after == before
    assert [kind for _, kind, _, _ in events][:2] == ["created", "module_added"]
    assert events[-1][1:3] == ("state_changed", "draft -> active") and not elsewhere


async def test_bad_input_is_refused_without_echoing_it(api: Api) -> None:
    stub = api.stub
    long_id = "x" * 10_000
    for call in (
        stub.GetPatch(pb.GetPatchRequest(patch_id=long_id), timeout=T),
        stub.CreatePatch(pb.CreatePatchRequest(patch_id=long_id), timeout=T),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert code(caught) == grpc.StatusCode.INVALID_ARGUMENT
        assert len(caught.value.details() or "") < 500 and long_id[:300] not in str(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreatePatch(pb.CreatePatchRequest(patch_id="bad id\x00\u202e"), timeout=T)
    assert bad_request_violations(caught.value)[0][0] == "patch_id"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetPatch(pb.GetPatchRequest(patch_id="no/such"), timeout=T)
    assert code(caught) == grpc.StatusCode.NOT_FOUND and "'no/such'" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreatePatch(pb.CreatePatchRequest(strategy_toml="id = [[[garbage"), timeout=T)
    assert bad_request_violations(caught.value)[0][0] == "strategy_toml.file"
    raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = api.channel.unary_unary(
        "/trademesh.patch.v1.Patch/GetPatch"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\xff\xff\xff\xff", timeout=T)
    assert bad_request_violations(caught.value) == [
        ("(request body)", "is not a valid trademesh.patch.v1.GetPatchRequest message")
    ]
    await signal_patch(stub, "p")
    for ports, rate, name in (
        (["f.nope"], 0, "ports[0]"),
        (["nodot"], 0, "ports[0]"),
        ([], 31, "max_updates_per_s"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            stream = stub.StreamProbes(
                pb.StreamProbesRequest(patch_id="p", ports=ports, max_updates_per_s=rate)
            )
            await anext(aiter(stream))
        assert bad_request_violations(caught.value)[0][0] == name


async def test_a_patch_the_database_refuses_never_keeps_the_other_patches_from_being_saved(api: Api) -> None:
    """Each patch's changes are written apart: one whose text PostgreSQL cannot store (made in
    the engine, past the edge that refuses it in requests) is refused alone, once, and every
    other change of that flush and after it is saved (issue 37, item 18)."""
    engine, journal = api.state.engine, api.state.journal
    now = time.time_ns()
    engine.create_patch("before", "s", now, name="saved first")
    engine.create_patch("refused", "s", now, name="a\x00b")
    engine.create_patch("beside", "s", now, name="same flush")
    with pytest.raises(FailedPrecondition, match="'refused' cannot be saved"):
        await journal.flush(engine)
    engine.create_patch("after", "s", now, name="a later flush")
    await journal.flush(engine)
    await api.stub.CreatePatch(pb.CreatePatchRequest(patch_id="through-the-api", name="fine"), timeout=T)
    store = await PatchStore.open(api.url, "test")
    try:
        stored = {patch.patch_id for patch in await store.load_all()}
    finally:
        await store.close()
    assert stored == {"before", "beside", "after", "through-the-api"}
