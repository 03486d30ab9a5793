"""Services the gateway answers itself over gRPC-web, beside the ones it forwards.

A local service (the multiplexer, trademesh.gateway.mux) gets the call after the bridge's own checks
(content type, bearer, method shape, body) and hands back a Call, the same shape as a
forwarded one, so answers, deadlines, disconnects and a stopping gateway are handled once,
by the bridge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from trademesh.core.platform.access.contracts import Principal
from trademesh.gateway.grpcweb.status import CallStatus

__all__ = ["Call", "Caller", "LocalService", "UnaryAnswer"]


@dataclass(frozen=True)
class Caller:
    """Who made a call and what of it may go upstream."""

    # None only when the bridge runs without authentication.
    principal: Principal | None
    # The Authorization header as sent, so a long-lived session can check it again later.
    authorization: str | None
    # The request headers that cross the gateway (x-request-id, x-user-agent).
    metadata: Sequence[tuple[str, str]]


class Call(Protocol):
    """One call's answers and status (trademesh.gateway.grpcweb.forward.UpstreamCall is one)."""

    def messages(self) -> AsyncIterator[bytes]: ...

    async def status(self) -> CallStatus: ...

    async def response_metadata(self) -> list[tuple[str, str]]: ...

    async def trailing_metadata(self) -> list[tuple[str, str]]: ...

    def cancel(self) -> None: ...


class LocalService(Protocol):
    async def start(self, method: str, request: bytes, caller: Caller) -> Call:
        """The call of `method` (the name after the service's); raises trademesh.core.platform.errors'
        TrademeshError or trademesh.gateway.grpcweb.status.CallRefused to refuse it before any answer."""
        ...


class UnaryAnswer:
    """A unary call answered at once: one message, then OK."""

    def __init__(self, message: bytes) -> None:
        self._message = message

    async def messages(self) -> AsyncIterator[bytes]:
        yield self._message

    async def status(self) -> CallStatus:
        return CallStatus.ok()

    async def response_metadata(self) -> list[tuple[str, str]]:
        return []

    async def trailing_metadata(self) -> list[tuple[str, str]]:
        return []

    def cancel(self) -> None:
        pass
