"""The services board's state: every round (every `every_s`), the health and the metrics of
every registered instance, and Alertmanager's firing alerts, each read at once, each bounded by
its own timeout, so one slow instance never delays the others or the next round.

List, Watch and the MCP tool read the snapshot(): the registry's live instances as they are
now (one that left is gone at once, one new shows UNKNOWN until checked), with what the last
round found of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.gateway.board.alerts import AlertSource, attach
from trademesh.gateway.board.figures import ScrapeReading, absent, figures, parse_reading, work_counters
from trademesh.gateway.config import BoardOptions
from trademesh.gateway.registry.state import Entry, RegistryState
from trademesh.gateway.registry.targets import metrics_target
from trademesh.services.v1 import services_pb2 as pb

__all__ = ["Board", "BoardOptions", "Checked"]

log = logging.getLogger(__name__)

_HEALTH = {
    health_pb2.HealthCheckResponse.SERVING: pb.HEALTH_SERVING,
    health_pb2.HealthCheckResponse.NOT_SERVING: pb.HEALTH_NOT_SERVING,
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN: pb.HEALTH_NOT_SERVING,
}
_GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class Checked:
    """What the last round found of one instance."""

    health: pb.Health.ValueType
    detail: str
    events: pb.Figure
    lag: pb.Figure
    errors: pb.Figure
    reading: ScrapeReading | None = None


@dataclass
class _Alerts:
    firing: list[pb.Alert] = field(default_factory=list)
    error: str = ""


class Board:
    def __init__(
        self,
        state: RegistryState,
        options: BoardOptions,
        wall_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.options = options
        self._wall_ns = wall_ns
        self._monotonic = monotonic
        self._checked: dict[str, Checked] = {}
        self._alerts = _Alerts()
        self._taken_at_ns = 0
        url = options.alertmanager_url
        self._alert_source = AlertSource(url, options.check_timeout_s) if url else None
        # One channel per instance address, closed once no instance is there.
        self._channels: dict[str, grpc.aio.Channel] = {}
        # When someone last looked, and the round they wait for (set when a round ends).
        self._asked_at = -math.inf
        self._asked = asyncio.Event()
        self._round_done = asyncio.Event()

    async def fresh(self) -> pb.Snapshot:
        """The snapshot, after a round when the board was idle (nobody looked within idle_s):
        the first look at an idle board waits for one round (at most its checks' deadline)."""
        idle = not self._looking()
        self.touch()
        if idle or self._taken_at_ns == 0:
            done = self._round_done
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.options.check_timeout_s + self.options.every_s)
        return self.snapshot()

    def touch(self) -> None:
        """Someone looks: rounds go on (or start again)."""
        self._asked_at = self._monotonic()
        self._asked.set()

    def _looking(self) -> bool:
        return self._monotonic() - self._asked_at <= self.options.idle_s

    def snapshot(self) -> pb.Snapshot:
        entries = self.state.instances()
        by_id, mesh = attach(self._alerts.firing, entries)
        return pb.Snapshot(
            services=[self._status(entry, by_id[entry.instance_id]) for entry in entries],
            mesh_alerts=mesh,
            taken_at_ns=self._taken_at_ns,
            alerts_error=self._alerts.error,
            alerts_configured=self._alert_source is not None,
        )

    @contextlib.asynccontextmanager
    async def running(self, stop: asyncio.Event) -> AsyncIterator[None]:
        """The rounds in a task of their own while the block runs."""
        task = asyncio.create_task(self.run(stop), name="services board")
        try:
            yield
        finally:
            await cancel_and_wait(task)
            await self._close_channels(set())

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                if not self._looking():  # idle: nothing checked until someone looks
                    self._asked.clear()
                    await _first(self._asked.wait(), stop.wait())
                    continue
                started = self._monotonic()
                try:
                    await self.round(session)
                except Exception:  # a bug here must not end the board
                    log.exception("services board: a round failed")
                # A round every every_s, however long the last one waited on a slow instance.
                left_s = max(0.0, self.options.every_s - (self._monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), left_s)

    async def round(self, session: aiohttp.ClientSession) -> None:
        entries = self.state.instances()
        alerts = asyncio.create_task(self._read_alerts(session))
        found = await asyncio.gather(*(self._check(entry, session) for entry in entries))
        await alerts
        await self._close_channels({entry.address for entry in entries})
        self._checked = {entry.instance_id: checked for entry, checked in zip(entries, found, strict=True)}
        self._taken_at_ns = self._wall_ns()
        self._round_done.set()
        self._round_done = asyncio.Event()

    def _status(self, entry: Entry, alerts: list[pb.Alert]) -> pb.ServiceStatus:
        checked = self._checked.get(entry.instance_id)
        status = pb.ServiceStatus(
            name=entry.name,
            kind=entry.kind,
            instance_id=entry.instance_id,
            address=entry.address,
            version=entry.version,
            registered_at_ns=entry.registered_at_ns,
            last_heartbeat_ns=entry.last_heartbeat_ns,
            metrics_port=entry.metrics_port,
            alerts=alerts,
        )
        if checked is None:
            not_yet = absent("not checked yet")
            status.health = pb.HEALTH_UNKNOWN
            status.health_detail = "not checked yet"
            status.events_per_s.CopyFrom(not_yet)
            status.bus_lag.CopyFrom(not_yet)
            status.errors_per_s.CopyFrom(not_yet)
            return status
        status.health = checked.health
        status.health_detail = checked.detail
        status.events_per_s.CopyFrom(checked.events)
        status.bus_lag.CopyFrom(checked.lag)
        status.errors_per_s.CopyFrom(checked.errors)
        return status

    async def _check(self, entry: Entry, session: aiohttp.ClientSession) -> Checked:
        (health, detail), reading = await asyncio.gather(self._health(entry), self._metrics(entry, session))
        if isinstance(reading, str):
            gone = absent(reading)
            return Checked(health, detail, gone, gone, gone)
        before = self._checked.get(entry.instance_id)
        counters = work_counters(entry.name, entry.kind)
        events, lag, errors = figures(None if before is None else before.reading, reading, counters)
        return Checked(health, detail, events, lag, errors, reading)

    async def _health(self, entry: Entry) -> tuple[pb.Health.ValueType, str]:
        if self.state.is_own(entry):  # this gateway: it answers because it serves (no call to itself)
            return pb.HEALTH_SERVING, ""
        channel = self._channels.get(entry.address)
        if channel is None:
            channel = self._channels[entry.address] = grpc.aio.insecure_channel(entry.address)
        stub = health_pb2_grpc.HealthStub(channel)
        timeout_s = self.options.check_timeout_s
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s, metadata=auth_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return pb.HEALTH_UNREACHABLE, f"no answer within {timeout_s:g} s"
            if exc.code() in _GONE:
                return pb.HEALTH_UNREACHABLE, f"UNAVAILABLE: {exc.details() or 'unreachable'}"
            return pb.HEALTH_UNKNOWN, f"health check answered {exc.code().name}"
        health = _HEALTH.get(reply.status, pb.HEALTH_UNKNOWN)
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return health, "" if health == pb.HEALTH_SERVING else f"health check answered {name}"

    async def _close_channels(self, keep: set[str]) -> None:
        for address in [address for address in self._channels if address not in keep]:
            await self._channels.pop(address).close()

    async def _metrics(self, entry: Entry, session: aiohttp.ClientSession) -> ScrapeReading | str:
        """Its reading, or why there is none."""
        target = metrics_target(entry)
        if target is None:
            return "no metrics port"
        timeout = aiohttp.ClientTimeout(total=self.options.check_timeout_s)
        try:
            async with session.get(f"http://{target}/metrics", timeout=timeout) as reply:
                if reply.status != 200:
                    return f"metrics endpoint answered HTTP {reply.status}"
                text = await reply.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"metrics unreachable at {target}: {type(exc).__name__} {exc}".strip()
        counters = work_counters(entry.name, entry.kind)
        try:
            return await asyncio.to_thread(parse_reading, text, self._monotonic(), counters)
        except ValueError as exc:
            return f"metrics at {target} are not Prometheus text: {exc}"

    async def _read_alerts(self, session: aiohttp.ClientSession) -> None:
        if self._alert_source is None:
            return
        try:
            firing = await self._alert_source.firing(session)
        except (TrademeshError, ValueError) as exc:
            if not self._alerts.error:
                log.warning("services board: %s", exc)
            self._alerts = _Alerts([], str(exc))
            return
        self._alerts = _Alerts(firing)


async def _first(*waits: Coroutine[Any, Any, object]) -> None:
    """Returns once one of `waits` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
