"""Runs the chosen checks against one venue: a first look that tells a venue from anything else
(exit 2), then each check in order under its own deadline, then the venue left as it was found."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import grpc

import trademesh.core.venue_check.checks  # noqa: F401  (registers the checks)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.venue_check.kit import Kit, KitOptions
from trademesh.core.venue_check.orders import leave_flat
from trademesh.core.venue_check.registry import VenueCheck
from trademesh.core.venue_check.results import (
    BadTarget,
    CheckFailed,
    CheckOutcome,
    CheckResult,
    CheckSkipped,
    one_line,
)
from trademesh.core.venue_check.wire import describe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Report", "run_kit"]

_FIRST_LOOK_S = 5.0


@dataclass
class Report:
    address: str
    venue: str = ""
    symbol: str = ""
    results: list[CheckResult] = field(default_factory=list)
    # What the kit could not undo (orders it could not cancel), in lines.
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def conforms(self) -> bool:
        return all(r.outcome is not CheckOutcome.FAIL for r in self.results)

    def count(self, outcome: CheckOutcome) -> int:
        return sum(r.outcome is outcome for r in self.results)


async def run_kit(options: KitOptions, checks: list[VenueCheck]) -> Report:
    """The report of `checks` against the venue at options.address; BadTarget when it is none."""
    started = time.monotonic()
    kit = Kit(options)
    report = Report(options.address)
    try:
        await _first_look(kit, options)
        report.venue = kit.venue
        report.symbol = kit.chosen_symbol
        for item in checks:
            report.results.append(await _run_one(kit, item))
        left = await leave_flat(kit)
        if left:
            report.notes.append(f"orders the kit could not cancel: {', '.join(left)}")
    finally:
        await kit.close()
    report.duration_s = time.monotonic() - started
    return report


async def _run_one(kit: Kit, item: VenueCheck) -> CheckResult:
    started = time.monotonic()
    try:
        reason = await asyncio.wait_for(item.run(kit), item.timeout_s)
        outcome = CheckOutcome.PASS
    except CheckSkipped as skipped:
        outcome, reason = CheckOutcome.SKIP, str(skipped)
    except CheckFailed as failed:
        outcome, reason = CheckOutcome.FAIL, str(failed)
    except TimeoutError:
        outcome, reason = (
            CheckOutcome.FAIL,
            f"not done within the check's {item.timeout_s:g} s: the venue did not answer in time",
        )
    except grpc.aio.AioRpcError as error:
        outcome, reason = CheckOutcome.FAIL, f"an unexpected answer: {describe(error)}"
    except Exception as error:  # a venue's odd answer the check did not foresee: a line, never a traceback
        outcome, reason = (
            CheckOutcome.FAIL,
            f"the check could not read the venue's answers: {type(error).__name__}: {error}",
        )
    if outcome is CheckOutcome.FAIL:
        await _leave_flat_quietly(kit)
    return CheckResult(item.name, outcome, one_line(reason), time.monotonic() - started)


async def _leave_flat_quietly(kit: Kit) -> None:
    # The final sweep tries again, and reports what is left.
    with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError, CheckFailed):
        await asyncio.wait_for(leave_flat(kit), 3 * kit.options.call_timeout_s)


async def _first_look(kit: Kit, options: KitOptions) -> None:
    """GetStatus, ListInstruments and a read with the trading credential: what makes the address
    a venue the kit can check. BadTarget otherwise."""
    address = options.address
    try:
        kit.status = await kit.mesh.admin.GetStatus(admin.GetStatusRequest(), timeout=_FIRST_LOOK_S)
    except grpc.aio.AioRpcError as error:
        raise BadTarget(_not_a_venue(address, error, options.mesh_token_source)) from None
    if not kit.status.venue:
        raise BadTarget(f"{address} answers Admin/GetStatus without a venue name: not a trademesh venue")
    try:
        await kit.trade.tf.GetBalances(tf.GetBalancesRequest(), timeout=_FIRST_LOOK_S)
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise BadTarget(
                f"venue {kit.venue} at {address} refused the trading credential "
                f"({options.trade_token_source}): {describe(error)}"
            ) from None
    try:
        listed = await kit.mesh.md.ListInstruments(md.ListInstrumentsRequest(), timeout=_FIRST_LOOK_S)
        kit.choose_instrument(list(listed.instruments))
    except grpc.aio.AioRpcError as error:
        kit.instruments_error = f"ListInstruments answered {describe(error)}"


def _not_a_venue(address: str, error: grpc.aio.AioRpcError, token_source: str) -> str:
    code, details = error.code(), one_line(error.details() or "")
    if code is grpc.StatusCode.UNAVAILABLE:
        if "onnection refused" in details:
            return f"nothing listens at {address} (connection refused)"
        return f"{address} does not answer as a gRPC server ({details})"
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return f"{address} answers gRPC but serves no trademesh.admin.v1.Admin: not a trademesh venue"
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return f"the venue at {address} refused the mesh token ({token_source}): {details}"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from {address} within {_FIRST_LOOK_S:g} s"
    return f"{address} does not answer Admin/GetStatus as a venue: {describe(error)}"
