"""Calls from the tools to the mesh: find the instance, call it with the mesh token and a deadline.

Instances are found through a Resolver on every call (they come and go): the gateway's app
registry in the gateway, trademesh.core.tools.resolver's view of it in the advisor. One grpc.aio channel
is kept per address and closed with the Upstream. gRPC failures become trademesh.core.platform.errors
(trademesh.core.platform.rpc.status.from_call_error), each naming the service and instance that failed.

Tools only read: a call whose method needs more than the `read` scope
(trademesh.core.platform.access.scopes, the one table) is refused before it goes, unless its
request makes it a dry run (_DRY_RUNS: Decide without `publish` decides and shows, and writes
nothing). The exceptions are calls made for a caller (an MCP client's key): one that needs a
scope granted only on purpose (_ON_PERMISSION: `close_all`, Inspector's SetMode CLOSE_ALL), the
calls of _FOR_CALLER (the backtest hub's StartBacktest: it spends the machine's cores; a
strategy paused or resumed, a Supervisor's proposal approved or rejected: `trade`) and of
_FOR_CALLER_AS in the one form its tool builds (the inspector resumed: `trade`; one strategy's
reserved capital, or limits only lowered: `admin`): each goes when that key holds the scope it
needs, and only then. No tool places an order or writes a policy of its own making, whatever
its caller's key may do.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from trademesh.core.platform.access.contracts import Principal, Resolver, Scope
from trademesh.core.platform.access.scopes import check_scope, required_scope
from trademesh.core.platform.errors import (
    PermissionDenied,
    Unavailable,
)
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.status import calling
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["Upstream"]

R = TypeVar("R", bound=Message)

# Methods whose scope is above `read` only because of what a request may ask: the form of the
# request that changes nothing.
_DRY_RUNS: dict[str, Callable[[Any], bool]] = {
    "trademesh.advisor.v1.Advisor/Decide": lambda request: not request.publish,
}
_ONE_CAPITAL = re.compile(r'\[capital\.reserved\]\n"[a-z0-9][a-z0-9_-]{0,63}" = "[0-9.]+"\n')
# Scopes above `read` a tool may use on behalf of its caller, when the caller's key holds them:
# those never implied by another, granted for exactly what they name.
_ON_PERMISSION = frozenset({Scope.CLOSE_ALL})
# Methods beyond reading a tool may call for its caller when the caller's key holds the
# method's scope: starting a backtest (it trades nothing; it spends the machine's cores).
_FOR_CALLER = frozenset(
    {
        "trademesh.backtest.v1.Backtest/StartBacktest",
        # A strategy paused or resumed (no order placed; `trade`).
        "trademesh.patch.v1.Patch/PausePatch",
        "trademesh.patch.v1.Patch/ActivatePatch",
        # An operator's decision on one of the Supervisor's proposals (`trade`: the supervisor_decide tool).
        "trademesh.supervisor.v1.Supervisor/Approve",
        "trademesh.supervisor.v1.Supervisor/Reject",
    }
)
# Methods a tool may call for its caller in one form only, the form its tool builds: the
# inspector resumed (SetMode RESUME: `trade`; CLOSE_ALL goes by _ON_PERMISSION), one
# strategy's reserved capital over the policies in force (the set_capital tool: `admin`), and a
# change over the policies in force that the inspector refuses unless it only lowers limits
# (tighten_only: the tighten_policy tool, `admin`).
_FOR_CALLER_AS: dict[str, Callable[[Any], bool]] = {
    "trademesh.risk.v1.Inspector/SetMode": lambda request: request.mode == rk.MODE_RESUME,
    "trademesh.risk.v1.Inspector/UpdatePolicies": lambda request: bool(
        request.over_current and (_ONE_CAPITAL.fullmatch(request.toml) or request.tighten_only)
    ),
}


class Upstream:
    def __init__(self, resolver: Resolver, timeout_s: float) -> None:
        self._resolver = resolver
        self.timeout_s = timeout_s
        self._upstreams = Upstreams()  # the gateway's channel pool and its options

    def names(self, service: str) -> list[str]:
        return self._resolver.names(service)

    async def unary(
        self,
        service: str,
        target: str | None,
        method: str,
        request: Message,
        answer: type[R],
        *,
        caller: Principal | None = None,
        timeout_s: float | None = None,
    ) -> R:
        """One unary call. `caller`: the key a tool acts for, for a call beyond reading that
        needs a permission of _ON_PERMISSION (PermissionDenied naming it when the key lacks it).
        `timeout_s`: this call's deadline instead of the gateway's (a call known to take long)."""
        deadline = self.timeout_s if timeout_s is None else timeout_s
        _allowed(service, method, request, caller)
        address = self._resolver.resolve(service, target)
        call = self._channel(address).unary_unary(
            f"/{service}/{method}",
            request_serializer=_serialize,
            response_deserializer=answer.FromString,
        )
        with self._mapped(service, target, address, deadline):
            response: R = await call(request, timeout=deadline, metadata=auth_metadata())
            return response

    async def first(
        self, service: str, target: str | None, method: str, request: Message, answer: type[R]
    ) -> R:
        """The first message of a server stream, then the stream is cancelled; all under the deadline."""
        address, call = self._open_stream(service, target, method, request, answer, self.timeout_s)
        try:
            with self._mapped(service, target, address):
                message = await asyncio.wait_for(call.read(), self.timeout_s)
        finally:
            call.cancel()
        if message is grpc.aio.EOF:
            raise Unavailable(f"{_who(service, target, address)} ended the stream without an answer")
        return cast(R, message)

    async def collect(
        self, service: str, target: str | None, method: str, request: Message, answer: type[R], wait_s: float
    ) -> list[R]:
        """The messages a server stream sends within `wait_s`, then the stream is cancelled."""
        timeout_s = wait_s + self.timeout_s
        address, call = self._open_stream(service, target, method, request, answer, timeout_s)
        found: list[R] = []
        try:
            with self._mapped(service, target, address), contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    while (message := await call.read()) is not grpc.aio.EOF:
                        found.append(cast(R, message))
        finally:
            call.cancel()
        return found

    async def stream(
        self, service: str, target: str | None, method: str, request: Message, answer: type[R]
    ) -> AsyncGenerator[R]:
        """A server stream's messages as they come, until it ends (a subscription: no deadline;
        the stream is cancelled when the iterator is closed)."""
        address, call = self._open_stream(service, target, method, request, answer, None)
        try:
            with self._mapped(service, target, address):
                while (message := await call.read()) is not grpc.aio.EOF:
                    yield cast(R, message)
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._upstreams.close()

    def _open_stream(
        self,
        service: str,
        target: str | None,
        method: str,
        request: Message,
        answer: type[R],
        timeout_s: float | None,
    ) -> tuple[str, grpc.aio.UnaryStreamCall[Message, R]]:
        """A read-only server stream to the service's resolved address, with its deadline."""
        _allowed(service, method, request, None)
        address = self._resolver.resolve(service, target)
        stream = self._channel(address).unary_stream(
            f"/{service}/{method}",
            request_serializer=_serialize,
            response_deserializer=answer.FromString,
        )
        return address, stream(request, timeout=timeout_s, metadata=auth_metadata())

    def _channel(self, address: str) -> grpc.aio.Channel:
        return self._upstreams.channel(address)

    @contextlib.contextmanager
    def _mapped(
        self, service: str, target: str | None, address: str, timeout_s: float | None = None
    ) -> Iterator[None]:
        deadline = self.timeout_s if timeout_s is None else timeout_s
        who = _who(service, target, address)
        try:
            with calling(who, deadline):
                yield
        except TimeoutError as exc:
            raise Unavailable(f"{who} did not answer within {deadline:g} s") from exc


def _allowed(service: str, method: str, request: Message, caller: Principal | None) -> None:
    # The guard lets in any key holding `read`: a tool must never reach further than that, but
    # for what a permission of the caller's own key covers.
    dry_run = _DRY_RUNS.get(f"{service}/{method}")
    if dry_run is not None and dry_run(request):
        return
    needed = required_scope(service, method, request)
    if needed is Scope.READ:
        return
    form = _FOR_CALLER_AS.get(f"{service}/{method}")
    allowed = f"{service}/{method}" in _FOR_CALLER or (form is not None and form(request))
    if caller is not None and (needed in _ON_PERMISSION or allowed):
        check_scope(caller, service, method, request)
        return
    raise PermissionDenied(f"{service}/{method} is not a read: MCP tools only read")


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _who(service: str, target: str | None, address: str) -> str:
    name = "" if target is None else f" of {target!r}"
    return f"{service}{name} at {address}"
