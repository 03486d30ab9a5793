"""The inspector's limits, read for the core (issue 57 item 4; docs/advisor.md, "Within the
inspector's limits"): every inspector the mesh's registry names is asked for its policies
(Inspector.GetPolicies, a read, with the mesh's token) every `every_s`; the tightest of each limit
goes to the core (`AdvisorCore.on_limits`) when it changes, so that stage 8 sizes intents within
them instead of sending what the inspector is certain to block. An inspector that does not
answer leaves the limits last read in force; none read yet, intents are sized without them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol

from trademesh.core.advisor.engine.limits import RiskLimits, limits_from_status
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.errors import TrademeshError
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["INSPECTOR", "InspectorLimits"]

log = logging.getLogger(__name__)

INSPECTOR = "trademesh.risk.v1.Inspector"


class Inspectors(Protocol):
    """What is read of the mesh (trademesh.core.tools.upstream.Upstream)."""

    def names(self, service: str) -> list[str]: ...

    async def unary(
        self, service: str, target: str | None, method: str, request: rk.GetPoliciesRequest,
        answer: type[rk.GetPoliciesResponse],
    ) -> rk.GetPoliciesResponse: ...  # fmt: skip


class InspectorLimits:
    def __init__(self, mesh: Inspectors, every_s: float = 5.0) -> None:
        self._mesh = mesh
        self.every_s = every_s
        self.limits: RiskLimits | None = None
        self._failing: set[str] = set()

    async def read(self) -> RiskLimits | None:
        """The tightest limits of the inspectors that answered; the last read when none did."""
        names = self._mesh.names(INSPECTOR)
        answers = await asyncio.gather(*(self._ask(name) for name in names))
        found = [answer for answer in answers if answer is not None]
        if found:
            self.limits = _tightest(found)
        return self.limits

    async def run(self, stop: asyncio.Event, on_change: Callable[[RiskLimits | None], None]) -> None:
        """Read every `every_s` until `stop`, handing the limits on when they change."""
        handed: RiskLimits | None = None
        while not stop.is_set():
            limits = await self.read()
            if limits != handed:
                handed = limits
                on_change(limits)
                log.info("advisor: the inspector's limits, intents sized within them: %s", _said(limits))
            await sleep_unless(stop, self.every_s)

    async def _ask(self, name: str) -> RiskLimits | None:
        try:
            request = rk.GetPoliciesRequest()
            answer = await self._mesh.unary(INSPECTOR, name, "GetPolicies", request, rk.GetPoliciesResponse)
        except TrademeshError as exc:
            if name not in self._failing:
                log.warning("advisor: inspector %s's policies: %s (the limits last read stay)", name, exc)
            self._failing.add(name)
            return None
        self._failing.discard(name)
        return limits_from_status({status.key: status.limit for status in answer.status})


def _tightest(found: Sequence[RiskLimits]) -> RiskLimits:
    def least(values: list[Decimal | None]) -> Decimal | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    return RiskLimits(
        least([f.max_order_notional for f in found]), least([f.max_position_notional for f in found])
    )


def _said(limits: RiskLimits | None) -> str:
    if limits is None:
        return "none"
    order, position = limits.max_order_notional, limits.max_position_notional
    return f"orders.max_notional {order}, position.max_notional {position}"
