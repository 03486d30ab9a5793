"""The mesh at a glance (Overwatch.StreamOverview): each second the registry's live services,
the inspector's state and positions, every detector's strategies (their first status message:
state and last signal), the ledger's PnL per strategy, and Overwatch's own board, in one
message. The parts are asked at once, each under a deadline; one that does not answer is named
in `unavailable` and left empty, never guessed. Read with the mesh token: every call only reads.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from trademesh.core.platform.errors import TrademeshError
from trademesh.core.tools.render import enum_word
from trademesh.core.tools.resolver import MeshResolver
from trademesh.core.tools.upstream import Upstream
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["OverviewSource"]

INSPECTOR, LEDGER, PATCH = (
    "trademesh.risk.v1.Inspector",
    "trademesh.ledger.v1.Ledger",
    "trademesh.patch.v1.Patch",
)


class OverviewSource:
    def __init__(self, resolver: MeshResolver, board: Callable[[], ow.Board], timeout_s: float = 0.8) -> None:
        self.resolver = resolver
        self.upstream = Upstream(resolver, timeout_s)
        self._board = board

    async def take(self, now_ns: int) -> ow.Overview:
        overview = ow.Overview(ts_ns=now_ns, board=self._board())
        by_name: dict[str, int] = defaultdict(int)
        for instance in self.resolver.instances():
            by_name[instance.name] += 1
        overview.services.extend(ow.LiveService(name=n, instances=c) for n, c in sorted(by_name.items()))
        detectors = self.upstream.names(PATCH)
        parts: dict[str, Awaitable[Any]] = {
            "inspector": self._risk(),
            "ledger": self.upstream.unary(LEDGER, None, "GetPnl", lg.GetPnlRequest(), lg.GetPnlResponse),
            **{f"detector {d}": self._statuses(d) for d in detectors},
        }
        answers = await asyncio.gather(*parts.values(), return_exceptions=True)
        got = dict(zip(parts, answers, strict=True))
        for name, answer in got.items():
            if isinstance(answer, TrademeshError):
                overview.unavailable.append(name)
            elif isinstance(answer, BaseException):
                raise answer
        fine = {name: answer for name, answer in got.items() if not isinstance(answer, BaseException)}
        risk, pnl = fine.get("inspector"), fine.get("ledger")
        statuses = [s for d in detectors for s in fine.get(f"detector {d}", [])]
        if risk is not None:
            overview.risk.CopyFrom(_risk_summary(risk[0]))
        overview.strategies.extend(_strategies(statuses, None if risk is None else risk[1], pnl))
        return overview

    async def _risk(self) -> tuple[rk.GetRiskStateResponse, rk.ListPositionsResponse]:
        state = await self.upstream.unary(
            INSPECTOR, None, "GetRiskState", rk.GetRiskStateRequest(), rk.GetRiskStateResponse
        )
        positions = await self.upstream.unary(
            INSPECTOR, None, "ListPositions", rk.ListPositionsRequest(), rk.ListPositionsResponse
        )
        return state, positions

    async def _statuses(self, detector: str) -> list[pb.StrategyStatus]:
        first = await self.upstream.first(
            PATCH,
            detector,
            "StreamStrategyStatus",
            pb.StreamStrategyStatusRequest(),
            pb.StreamStrategyStatusResponse,
        )
        return list(first.statuses)

    async def close(self) -> None:
        await self.upstream.close()


def _risk_summary(state: rk.GetRiskStateResponse) -> ow.RiskSummary:
    return ow.RiskSummary(
        state=enum_word(rk.RiskState.Name, state.state, "RISK_STATE_"),
        equity=state.equity,
        realized_pnl=state.realized_pnl,
        unrealized_pnl=state.unrealized_pnl,
        drawdown=state.drawdown.value,
    )


def _nonzero(text: str) -> bool:
    try:
        return Decimal(text or "0") != 0
    except InvalidOperation:
        return False


def _strategies(
    statuses: list[pb.StrategyStatus],
    positions: rk.ListPositionsResponse | None,
    pnl: lg.GetPnlResponse | None,
) -> list[ow.StrategySummary]:
    patches: dict[str, list[pb.StrategyStatus]] = defaultdict(list)
    for status in statuses:
        patches[status.patch_id.split("/", 1)[0]].append(status)
    held: dict[str, int] = defaultdict(int)
    for position in [] if positions is None else positions.positions:
        for share in position.strategies:
            if _nonzero(share.value):
                held[share.name] += 1
    books = {} if pnl is None else {s.strategy_id: s for s in pnl.strategies if s.strategy_id}
    out = []
    for name in sorted(set(patches) | set(held)):
        mine = patches.get(name, [])
        states = {enum_word(pb.PatchState.Name, s.state, "PATCH_STATE_") for s in mine}
        signals = [s.last_signal for s in mine if s.HasField("last_signal")]
        last = max(signals, key=lambda s: s.ts_signal_ns, default=None)
        book = books.get(name)
        out.append(
            ow.StrategySummary(
                strategy_id=name,
                state=states.pop() if len(states) == 1 else ("mixed" if states else ""),
                patches=len(mine),
                last_signal_ns=0 if last is None else last.ts_signal_ns,
                last_signal_direction=""
                if last is None
                else enum_word(sig.Direction.Name, last.direction, "DIRECTION_"),
                open_positions=held.get(name, 0),
                realised_pnl="" if book is None else book.realised,
                fees="" if book is None else book.fees,
            )
        )
    return out
