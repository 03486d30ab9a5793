"""Work that runs to its end whoever waits for it.

An RPC handler is cancelled when its caller goes: the client hung up, or its deadline passed
(as it does across a freeze of the server: the call's time runs on while the process is
stopped). Work that changes the world outside must not stop halfway then. A chaos run froze
the inspector just after an entry filled: when it woke, SubmitIntent's deadline had passed,
the handler was cancelled while the stop-loss's PlaceOrder was answered, and the take-profit
was never sent, while the core counted it placed. The inspector's commands run their work
here instead: the caller may leave, the work goes on, and its end (or its error) is logged
when nobody is left to hear it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["Unbroken"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Unbroken:
    """A service's work that its callers' cancellation does not stop (`run`); `close` waits for
    what is under way at the service's stop."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._under_way: set[asyncio.Future[Any]] = set()

    @property
    def under_way(self) -> int:
        return len(self._under_way)

    async def run(self, work: Awaitable[T]) -> T:
        """`work`'s result, as awaiting it gives; cancelled, the caller leaves and `work` goes on."""
        task = asyncio.ensure_future(work)
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                task.add_done_callback(self._left)
            raise

    def _left(self, task: asyncio.Future[Any]) -> None:
        """The end of work whose caller left: an error is logged (nobody else will see it)."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning("%s: work its caller left ended with %s", self.owner, error)

    async def close(self) -> None:
        """At stop: the work under way carried to its end (each step of it has its deadline)."""
        if self._under_way:
            await asyncio.gather(*list(self._under_way), return_exceptions=True)
