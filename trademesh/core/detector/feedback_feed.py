"""The live detector's ear on the inspector: every `every_s` its risk state and positions
(Inspector.GetRiskState, ListPositions, read with the mesh token), turned into the engine events
that changed (trademesh.core.detector.feedback) and handed to the runner. The inspector is the one given
(`--inspector HOST:PORT`) or the one registered with the gateway; while none answers, nothing is
heard (said once), and the strategies' feedback sources keep their last values."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.feedback import FeedbackTracker
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.errors import NotFound, TrademeshError
from trademesh.core.tools.resolver import Instance, MeshResolver
from trademesh.core.tools.upstream import Upstream
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["INSPECTOR", "InspectorFeedback"]

log = logging.getLogger(__name__)

INSPECTOR = "trademesh.risk.v1.Inspector"


class InspectorFeedback:
    def __init__(
        self,
        gateway: str | None,
        address: str | None,
        hear: Callable[[Sequence[Event]], None],
        every_s: float = 1.0,
        timeout_s: float = 2.0,
    ) -> None:
        given = [] if address is None else [Instance("inspector", address, (INSPECTOR,))]
        self.resolver = MeshResolver(gateway, given)
        self.upstream = Upstream(self.resolver, timeout_s)
        self.tracker = FeedbackTracker()
        self.hear = hear
        self.every_s = every_s
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        follow = asyncio.create_task(self.resolver.follow(stop), name="detector inspector registry")
        try:
            while not await sleep_unless(stop, self.every_s):
                await self.once()
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await self.upstream.close()
            await self.resolver.close()

    async def once(self) -> None:
        try:
            state = await self.upstream.unary(
                INSPECTOR, None, "GetRiskState", rk.GetRiskStateRequest(), rk.GetRiskStateResponse
            )
            positions = await self.upstream.unary(
                INSPECTOR, None, "ListPositions", rk.ListPositionsRequest(), rk.ListPositionsResponse
            )
        except TrademeshError as exc:
            if not self._failing:  # none registered yet (it starts after the detector in `up`): said quietly
                level = logging.INFO if isinstance(exc, NotFound) else logging.WARNING
                log.log(level, "detector: the inspector's feedback: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("detector: the inspector's feedback is heard again")
        self._failing = False
        events = self.tracker.events(state, positions.positions)
        if events:
            self.hear(events)
