"""The venues' executions from the bus (`exec.{<venue>}`, written by ingest exactly once), read as
the consumer group `inspector`: an entry is acknowledged once its executions are in the core's
journal, so an inspector that was down reads on from where it stopped (the core applies a fill
once: a redelivered one changes nothing). A new group starts at the streams' end: what happened
before the inspector's first start is legacy, found by the reconciliation.

A gap marker (the venue restarted, or its history no longer covered ingest's resume point) means
executions may be missing: every working order of that venue is queried at the venue, and the
reconciliation finds a position that differs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from trademesh.core.platform.bus.consumer import ConsumerOptions, Entry, GroupConsumer
from trademesh.core.platform.bus.names import EXECUTION_STREAMS, executions_stream, parse_executions_stream
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["BusExecutions"]

OnExecution = Callable[[tf.Execution], Awaitable[None]]
OnGap = Callable[[str], Awaitable[None]]


class BusExecutions:
    def __init__(
        self, redis: BusRedis, group: str, consumer: str, venues: list[str], on_execution: OnExecution,
        on_gap: OnGap,
    ) -> None:  # fmt: skip
        # The venues known now are named: their streams (made empty if need be) and the group
        # exist before the first order, so not one execution comes before the group's start.
        self.streams = tuple(executions_stream(v) for v in venues)
        self.redis = redis
        self.group = group
        # A blocked read answers as soon as an execution comes: its block only paces the rounds
        # (a new venue's stream found, metrics) when nothing comes, at the consumers' default
        # (100 ms woke the inspector 10 times a second for nothing).
        options = ConsumerOptions(
            group=group, consumer=consumer, streams=self.streams, patterns=(EXECUTION_STREAMS,),
            batch=500, start_id="$", discover_s=1.0,
        )  # fmt: skip
        self.consumer = GroupConsumer(redis, options, self._handle)
        self.on_execution = on_execution
        self.on_gap = on_gap
        self.read = 0
        # While a batch is being handled: when the last execution of it went through (monotonic).
        self.busy_at: float | None = None

    async def start_fresh(self) -> None:
        """A new journal: the group (of an earlier lifetime, if any) moves to the streams' end."""
        await self.consumer.ensure_groups()
        for stream in self.streams:
            await self.redis.xgroup_setid(stream, self.group, "$")

    async def run(self, stop: asyncio.Event) -> None:
        await self.consumer.run(stop)

    def stalled_s(self) -> float:
        """How long one execution has been going through the core and the venues now (0: none)."""
        return 0.0 if self.busy_at is None else time.monotonic() - self.busy_at

    async def _handle(self, stream: str, entries: list[Entry]) -> None:
        venue = parse_executions_stream(stream) or ""
        self.busy_at = time.monotonic()
        try:
            for _, envelope in entries:
                batch = envelope.executions
                if batch.gap:
                    await self.on_gap(batch.venue or venue)
                for execution in batch.executions:
                    if not execution.venue:
                        execution.venue = batch.venue or venue
                    await self.on_execution(execution)
                    self.read += 1
                    self.busy_at = time.monotonic()
        finally:
            self.busy_at = None
