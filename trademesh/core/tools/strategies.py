"""MCP tools over the detector's Patch API: the strategies (patches) every detector instance
runs, and their live status; and, for a caller whose key holds `trade`, a strategy paused or
resumed on every detector (its patches, `<strategy>/<venue>/<symbol>`: no new signals while
paused; it places no order itself). Everything else only reads (trademesh.core.tools.upstream)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from pydantic import Field

from trademesh.core.platform.access.contracts import Principal
from trademesh.core.platform.access.scopes import check_scope
from trademesh.core.platform.errors import InvalidArgument, NotFound, PermissionDenied, TrademeshError, shown
from trademesh.core.platform.patch_markets import PATCH
from trademesh.core.tools.inputs import strategy_name
from trademesh.core.tools.render import enum_word, iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["PATCH", "StrategyId", "StrategyTools"]

Json = dict[str, Any]
StrategyId = Annotated[
    str, Field(description="the strategy's id, e.g. trend (its patches: trend/<venue>/<symbol>)")
]
# A strategy's patches paused or activated: the Patch API's request and answer for each, and the
# state it leads to. A patch in that state already is left as it is: the detector refuses to
# switch it again, and a strategy paused twice, or resumed while paused on some markets only,
# stopped at that patch with an error (the rest left as they were: such a strategy could not be
# resumed at all).
_STATE_CALLS: dict[str, tuple[Any, Any, int]] = {
    "PausePatch": (pb.PausePatchRequest, pb.PausePatchResponse, pb.PATCH_STATE_PAUSED),
    "ActivatePatch": (pb.ActivatePatchRequest, pb.ActivatePatchResponse, pb.PATCH_STATE_ACTIVE),
}


class StrategyTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def list_strategies(self) -> Json:
        """Every strategy patch of every detector instance: patch id (<strategy>/<venue>/<symbol>
        for strategy files), name, state (draft, active, paused, archived, errored), version and
        markets, by detector."""
        detectors = self._up.names(PATCH)
        found = await asyncio.gather(*(self._patches(name) for name in detectors))
        return {"detectors": list(found)}

    async def strategy_status(self, patch: str | None = None) -> Json:
        """Live status of one patch (its id, e.g. trend/sim/BTC/USDT), or of every patch: state,
        version, evaluations per second, whether it is warmed up, errors, slow modules, and the
        last signal with its rules' attribution."""
        if patch is not None and (not patch or len(patch) > 128):
            raise InvalidArgument.field("patch", f"{shown(patch)} is not a patch id (1-128 characters)")
        detectors = self._up.names(PATCH)
        found = await asyncio.gather(*(self._statuses(name, patch) for name in detectors))
        statuses = [status for part in found for status in part]
        if patch is not None and not statuses:
            raise InvalidArgument.field(
                "patch", f"no detector runs a patch {shown(patch)} (see list_strategies)"
            )
        return {"strategies": statuses}

    async def pause_strategy(self, strategy: StrategyId, *, caller: Principal | None) -> Json:
        """Pause a strategy on every detector: each of its patches (`<strategy>/<venue>/<symbol>`)
        stops signalling until resumed; open positions are left to their protective orders and
        the risk governor. Only for an API key holding `trade`. Answers each patch's state."""
        return await self._set_state(strategy, "PausePatch", caller)

    async def resume_strategy(self, strategy: StrategyId, *, caller: Principal | None) -> Json:
        """Resume a paused strategy on every detector: each of its patches active again. Only for
        an API key holding `trade`. Answers each patch's state."""
        return await self._set_state(strategy, "ActivatePatch", caller)

    async def _set_state(self, strategy: str, method: str, caller: Principal | None) -> Json:
        if caller is None:
            raise PermissionDenied(f"{method} acts for an API key holding 'trade': none given")
        strategy_name(strategy)
        request_type, answer_type, target = _STATE_CALLS[method]
        # The key's scope first: a patch already in the state asks nothing of the detector, and
        # a read key must not be told OK for what it may not do (nor learn the state that way).
        check_scope(caller, PATCH, method, request_type())
        changed = []
        for detector in self._up.names(PATCH):
            listed = await self._up.unary(
                PATCH, detector, "ListPatches", pb.ListPatchesRequest(), pb.ListPatchesResponse
            )
            for patch in (p for p in listed.patches if p.patch_id.split("/", 1)[0] == strategy):
                state = patch.state
                if state != target:
                    request = request_type(patch_id=patch.patch_id)
                    got = await self._up.unary(PATCH, detector, method, request, answer_type, caller=caller)
                    state = got.patch.state
                changed.append({"detector": detector, "patch": patch.patch_id, "state": _state(state)})
        if not changed:
            raise NotFound(f"no detector runs a strategy {shown(strategy)} (see list_strategies)")
        return {"strategy": strategy, "patches": changed}

    async def _patches(self, detector: str) -> Json:
        try:
            answer = await self._up.unary(
                PATCH, detector, "ListPatches", pb.ListPatchesRequest(), pb.ListPatchesResponse
            )
        except TrademeshError as exc:  # one detector down does not hide the others
            return {"detector": detector, "error": str(exc)}
        return {"detector": detector, "patches": [_summary(p) for p in answer.patches]}

    async def _statuses(self, detector: str, patch: str | None) -> list[Json]:
        request = pb.StreamStrategyStatusRequest(patch_ids=[] if patch is None else [patch])
        try:
            answer = await self._up.first(
                PATCH, detector, "StreamStrategyStatus", request, pb.StreamStrategyStatusResponse
            )
        except TrademeshError as exc:
            if patch is not None:
                return []
            return [{"detector": detector, "error": str(exc)}]
        return [{"detector": detector, **_status(s)} for s in answer.statuses]


def _state(value: int) -> str:
    return enum_word(pb.PatchState.Name, value, "PATCH_STATE_")


def _summary(patch: pb.PatchSummary) -> Json:
    return {
        "patch": patch.patch_id,
        "name": patch.name,
        "state": _state(patch.state),
        "version": patch.version,
        "markets": [f"{m.venue}:{m.symbol}" for m in patch.markets],
    }


def _status(status: pb.StrategyStatus) -> Json:
    return {
        "patch": status.patch_id,
        "state": _state(status.state),
        "version": status.version,
        "evaluations_per_s": round(status.evaluations_per_s, 1),
        "warm": status.warm,
        "errors": [{"module": e.module_id, "message": e.message} for e in status.errors],
        "slow_modules": [
            {"module": t.module_id, "mean_us": round(t.mean_us), "max_us": round(t.max_us)}
            for t in status.timings
            if t.over_budget
        ],
        "last_signal": _signal(status.last_signal) if status.HasField("last_signal") else None,
    }


def _signal(signal: sig.Signal) -> Json:
    return {
        "signal_id": signal.signal_id,
        "time": iso_time(signal.ts_signal_ns),
        "symbol": signal.symbol,
        "direction": enum_word(sig.Direction.Name, signal.direction, "DIRECTION_"),
        "conviction": signal.conviction,
        "score": signal.score,
        "threshold": signal.threshold,
        "rules": [
            {"name": r.name, "weight": r.weight, "value": r.value, "fired": r.fired} for r in signal.rules
        ],
    }
