"""What the inspector keeps running per venue: its executions (order updates and fills, into
the core), its account stream (trademesh.core.inspector.account) and its dead-man heartbeat (the venue
cancels every order `ttl` after the last one: an inspector that dies leaves nothing working). A
venue found later (the gateway's registry) is followed once it appears. The heartbeats start
first, as the lease is taken (`beat`); the rest once the core is rebuilt (`run`).

The heartbeat is the one call to a venue not fenced by the lease (trademesh.core.inspector.lease_guard): a
deposed leader's heartbeat only keeps the switch armed as the new leader's does, and fencing it
would let a Redis blip trip the switch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc

from trademesh.admin.v1 import admin_pb2 as adm
from trademesh.core.inspector.account import VenueAccounts
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.rpc.status import call_failure
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["VenueFollowers"]

log = logging.getLogger(__name__)

OnExecution = Callable[[tf.Execution], Awaitable[None]]
_DISCOVER_S = 2.0


class VenueFollowers:
    def __init__(
        self,
        links: VenueLinks,
        on_execution: OnExecution | None,
        deadman_ttl_ms: int,
        accounts: VenueAccounts | None = None,
    ) -> None:
        self.links = links
        self.accounts = accounts  # each venue's account stream, for the reconciliation
        self.on_execution = on_execution  # None: executions come from the bus
        self.deadman_ttl_ms = deadman_ttl_ms
        self.heartbeats: dict[str, int] = {}  # venue -> heartbeats answered
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._accounts: dict[str, asyncio.Task[None]] = {}
        self._beats: dict[str, asyncio.Task[None]] = {}  # venue -> its heartbeat

    def beat(self, stop: asyncio.Event) -> None:
        """The dead-man heartbeats of the venues known, started now: a new leader arms them the
        moment it takes the lease, before its journal's replay (which takes seconds: a 9.5 s
        failover let the switch trip and cancel a resting entry). A venue found later is beaten
        from `run`."""
        if not self.deadman_ttl_ms:
            return
        for venue in self.links.names():
            if venue not in self._beats:
                self._beats[venue] = asyncio.create_task(
                    self._heartbeat(venue, stop), name=f"heartbeat {venue}"
                )

    async def close(self) -> None:
        """The heartbeats ended (`run` ends the rest)."""
        beats = list(self._beats.values())
        self._beats.clear()
        for task in beats:
            task.cancel()
        await asyncio.gather(*beats, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow every venue known, and each new one as it appears, until `stop`."""
        try:
            while True:
                self.beat(stop)
                for venue in self.links.names():
                    if venue not in self._tasks:
                        self._start(venue, stop)
                    self._follow_account(venue, stop)
                if await sleep_unless(stop, _DISCOVER_S):
                    return
        finally:
            tasks = [t for ts in self._tasks.values() for t in ts] + list(self._accounts.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    def _start(self, venue: str, stop: asyncio.Event) -> None:
        tasks = []
        if self.on_execution is not None:
            tasks.append(asyncio.create_task(self._executions(venue, stop), name=f"executions {venue}"))
        self._tasks[venue] = tasks

    def _follow_account(self, venue: str, stop: asyncio.Event) -> None:
        """The venue's account stream, followed again when it came back after leaving the mesh
        (the follower ends with the venue: a venue gone is no loop retrying forever)."""
        running = self._accounts.get(venue)
        if self.accounts is not None and (running is None or running.done()):
            self._accounts[venue] = asyncio.create_task(
                self.accounts.follow(venue, stop), name=f"account {venue}"
            )

    async def _executions(self, venue: str, stop: asyncio.Event) -> None:
        assert self.on_execution is not None
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            try:
                desk = self.links.desk(venue)
                call = desk.tradeflow.StreamExecutions(tf.StreamExecutionsRequest(), metadata=desk.metadata)
                async for response in call:
                    backoff.reset()
                    for execution in response.executions:
                        await self.on_execution(execution)
                reason = "the venue ended the stream"
            except grpc.aio.AioRpcError as exc:
                reason = call_failure(exc)
            except Exception as exc:  # no such venue any more
                reason = str(exc)
            delay = backoff.next()
            log.warning("inspector: %s executions lost (%s); again in %.1f s", venue, reason, delay)
            await sleep_unless(stop, delay)

    async def _heartbeat(self, venue: str, stop: asyncio.Event) -> None:
        every_s = self.deadman_ttl_ms / 3000
        request = adm.HeartbeatRequest(ttl_ms=self.deadman_ttl_ms)
        failing = False
        while not stop.is_set():
            try:
                desk = self.links.desk(venue)
                await desk.admin.Heartbeat(request, timeout=every_s, metadata=desk.metadata)
                self.heartbeats[venue] = self.heartbeats.get(venue, 0) + 1
                failing = False
            except grpc.aio.AioRpcError as exc:
                if not failing:
                    log.warning("inspector: %s heartbeat: %s", venue, exc.code().name)
                failing = True
            await sleep_unless(stop, every_s)
