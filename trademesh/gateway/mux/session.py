"""One mux session: the subscriptions of one Open stream and the frames waiting for its client.

Each subscription is an upstream call read by a task of its own as fast as the service sends:
its answers are queued as data frames, never waited on. When a frame does not fit in the
session's queue (the client reads too slowly) that subscription is ended with
RESOURCE_EXHAUSTED and its queued frames dropped; the others go on, and the client may
subscribe again (a live-data panel then starts from a fresh snapshot). So a slow tab costs the
gateway a bounded amount of memory and never slows a service or the bus behind it.

The session ends with its stream: the client went away or the gateway stops (every upstream
call is cancelled at once), or its credential stopped being valid (fail()). A subscription
whose method needs a scope the key no longer holds ends alone, PERMISSION_DENIED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc

from trademesh.core.platform.access.contracts import Principal, Scope
from trademesh.core.platform.errors import AlreadyExists, PermissionDenied, ResourceExhausted, Unauthenticated
from trademesh.gateway.grpcweb.forward import UpstreamCall, explained
from trademesh.gateway.grpcweb.status import CallStatus
from trademesh.gateway.mux import metrics
from trademesh.gateway.mux.frames import data_frame, end_frame, opened_frame
from trademesh.gateway.mux.limits import MuxLimits
from trademesh.gateway.mux.queue import FrameQueue

__all__ = ["MuxSession", "SessionOwner"]

log = logging.getLogger(__name__)

_REMOVED = CallStatus(grpc.StatusCode.CANCELLED, "removed by the client")


@dataclass(frozen=True)
class SessionOwner:
    """Who opened a session: only the same credential may add to it."""

    key_name: str
    # SHA-256 of the bearer credential (API key or Studio session token) that opened it.
    credential_digest: bytes


@dataclass
class _Subscription:
    id: str
    call: UpstreamCall
    address: str
    # What its method needs: a key narrowed since the Add loses the subscription.
    scope: Scope
    task: asyncio.Task[None] | None = None


class MuxSession:
    def __init__(
        self,
        session_id: str,
        owner: SessionOwner,
        limits: MuxLimits,
        recheck: Callable[[], Awaitable[Principal | None]],
        on_close: Callable[[MuxSession], None],
    ) -> None:
        """`recheck` authenticates the owner's credential again (raises Unauthenticated when it
        is no longer valid; None when auth is off); `on_close` is called once, when the session
        ends."""
        self.id = session_id
        self.owner = owner
        self._limits = limits
        self._queue = FrameQueue(limits.max_queued_bytes)
        self._subscriptions: dict[str, _Subscription] = {}
        self._final = CallStatus.ok()
        self._closed = False
        self._on_close = on_close
        # Every task of the session, kept until done (wait_closed() waits for them).
        self._tasks: set[asyncio.Task[None]] = set()
        self._opened = opened_frame(session_id, limits.max_subscriptions, limits.max_queued_bytes)
        self._rechecking = self._spawn(self._recheck_forever(recheck), f"mux {self.tag} auth")

    @property
    def tag(self) -> str:
        """The id's start, for logs (the id alone opens nothing: it is bound to a credential)."""
        return self.id[:8]

    def check_room(self, subscription_id: str) -> None:
        """Raises when `subscription_id` is live or the session holds its most subscriptions."""
        if subscription_id in self._subscriptions:
            raise AlreadyExists(
                f"subscription_id {subscription_id!r} is live in this session: remove it first "
                "or pick another id"
            )
        if len(self._subscriptions) >= self._limits.max_subscriptions:
            raise ResourceExhausted(
                f"this session has {len(self._subscriptions)} live subscriptions, the most allowed: "
                "remove one first"
            )

    def add(self, subscription_id: str, call: UpstreamCall, address: str, scope: Scope) -> None:
        """Starts reading `call`, whose method needs `scope`; check_room() first."""
        subscription = _Subscription(subscription_id, call, address, scope)
        self._subscriptions[subscription_id] = subscription
        subscription.task = self._spawn(self._pump(subscription), f"mux {self.tag} {subscription_id}")
        metrics.SUBSCRIPTIONS.inc()

    def remove(self, subscription_id: str) -> bool:
        """Ends a live subscription (its end frame says CANCELLED); False when it is not live."""
        subscription = self._subscriptions.get(subscription_id)
        if subscription is None:
            return False
        self._stop(subscription)
        self._end(subscription, _REMOVED)
        return True

    async def frames(self) -> AsyncIterator[bytes]:
        """The stream's frames: opened first, then the queue's, until the session ends."""
        try:
            yield self._opened
            while (frame := await self._queue.take()) is not None:
                yield frame
        finally:
            self.close()

    def status(self) -> CallStatus:
        """How the stream ends: OK, or why the session was failed."""
        return self._final

    def fail(self, status: CallStatus) -> None:
        """Ends the stream with `status` after cancelling every subscription."""
        if not self._closed:
            self._final = status
            self.close()

    def close(self) -> None:
        """Cancels every upstream call; idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions.values()):
            self._stop(subscription)
            self._forget(subscription)
        self._queue.close()
        if self._rechecking is not asyncio.current_task():
            self._rechecking.cancel()
        self._on_close(self)

    async def _pump(self, subscription: _Subscription) -> None:
        try:
            async for message in subscription.call.messages():
                frame = data_frame(subscription.id, message)
                if not self._deliver(subscription, frame):
                    return
                metrics.FRAMES.labels("data").inc()
                metrics.FRAME_BYTES.inc(len(frame))
            status = explained(await subscription.call.status(), subscription.address)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mux %s: subscription %s failed", self.tag, subscription.id)
            status = CallStatus(grpc.StatusCode.INTERNAL, "internal error; the gateway log has details")
        self._end(subscription, status)

    def _deliver(self, subscription: _Subscription, frame: bytes) -> bool:
        """Queues a data frame. When it does not fit, the subscription holding the most queued
        bytes is ended first (a quiet one, such as executions, is not cut for a busy book's
        sake), until it fits; False when that was `subscription` itself."""
        while not self._queue.offer(subscription.id, frame):
            heaviest = self._queue.heaviest()
            if heaviest is None or heaviest == subscription.id:
                self._overflow(subscription)
                return False
            victim = self._subscriptions.get(heaviest)
            if victim is None:  # frames of a subscription that has ended: drop them
                metrics.DROPPED_FRAMES.inc(self._queue.drop(heaviest))
            else:
                self._overflow(victim)
        return True

    def _overflow(self, subscription: _Subscription) -> None:
        queued, own = self._queue.queued_bytes, self._queue.bytes_of(subscription.id)
        metrics.DROPPED_FRAMES.inc(self._queue.drop(subscription.id))
        self._stop(subscription)
        message = (
            f"the client fell behind: {queued} bytes were waiting ({own} of this subscription), "
            f"the session's queue holds {self._limits.max_queued_bytes}; its frames were dropped: "
            "subscribe again"
        )
        log.info("mux %s: subscription %s ended: %s", self.tag, subscription.id, message)
        self._end(subscription, CallStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, message))

    def _stop(self, subscription: _Subscription) -> None:
        subscription.call.cancel()
        if subscription.task is not None and subscription.task is not asyncio.current_task():
            subscription.task.cancel()

    def _end(self, subscription: _Subscription, status: CallStatus) -> None:
        if self._subscriptions.get(subscription.id) is not subscription:
            return  # already ended (removed while its last answer was being read)
        self._forget(subscription)
        log.debug(
            "mux %s: subscription %s ended: %s %s", self.tag, subscription.id, status.name, status.message
        )
        self._queue.put_control(end_frame(subscription.id, status))
        metrics.FRAMES.labels("end").inc()
        metrics.ENDED.labels(status.name).inc()

    def _forget(self, subscription: _Subscription) -> None:
        del self._subscriptions[subscription.id]
        metrics.SUBSCRIPTIONS.dec()

    async def _recheck_forever(self, recheck: Callable[[], Awaitable[Principal | None]]) -> None:
        while True:
            await asyncio.sleep(self._limits.recheck_s)
            try:
                principal = await recheck()
                if principal is not None:
                    self._end_unheld(principal)
            except Unauthenticated as exc:
                log.info("mux %s of key %r: credential not valid now: %s", self.tag, self.owner.key_name, exc)
                self.fail(CallStatus.from_error(exc))
                return
            except Exception as exc:  # the key store is away: the last keys read stay in force
                log.warning("mux %s: cannot check the credential again: %s", self.tag, exc)

    def _end_unheld(self, principal: Principal) -> None:
        """Ends (PERMISSION_DENIED) the subscriptions whose scope the key no longer holds."""
        for subscription in list(self._subscriptions.values()):
            if subscription.scope not in principal.scopes:
                self._stop(subscription)
                refused = PermissionDenied(
                    f"API key {principal.key_name!r} no longer has the {subscription.scope.value!r} scope"
                    " this subscription needs"
                )
                self._end(subscription, CallStatus.from_error(refused))

    async def wait_closed(self) -> None:
        """Waits, after close(), until every task of the session has finished."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
