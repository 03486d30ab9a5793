"""One call forwarded to an upstream service over native gRPC, message bytes untouched.

The channel's multicallables get no serializers, so the request and the answers stay the
bytes the browser sent and the service wrote: the gateway never parses a message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from trademesh.gateway.grpcweb.headers import forwarded_response_metadata
from trademesh.gateway.grpcweb.status import CallStatus

__all__ = ["UpstreamCall", "explained"]


class UpstreamCall:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        path: str,
        request: bytes,
        *,
        streaming: bool,
        timeout_s: float | None,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        self.streaming = streaming
        self._call: Any
        if streaming:
            stream: Any = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
            self._call = stream(request, timeout=timeout_s, metadata=tuple(metadata))
        else:
            unary: Any = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            self._call = unary(request, timeout=timeout_s, metadata=tuple(metadata))
        self._status: CallStatus | None = None

    async def messages(self) -> AsyncIterator[bytes]:
        """The answers as they come; an upstream error ends them (see status())."""
        try:
            if self.streaming:
                async for message in self._call:
                    yield message
            else:
                yield await self._call
        except grpc.aio.AioRpcError as exc:
            trailing = tuple(exc.trailing_metadata() or ())
            self._status = CallStatus.from_metadata(exc.code(), exc.details() or "", trailing)

    async def status(self) -> CallStatus:
        """The final status, once messages() is exhausted."""
        if self._status is None:
            self._status = CallStatus.from_metadata(
                await self._call.code(),
                await self._call.details() or "",
                await self._call.trailing_metadata(),
            )
        return self._status

    async def response_metadata(self) -> list[tuple[str, str]]:
        """The allowed part of the upstream's initial metadata (for the response headers)."""
        return forwarded_response_metadata(await self._call.initial_metadata())

    async def trailing_metadata(self) -> list[tuple[str, str]]:
        return forwarded_response_metadata(await self._call.trailing_metadata())

    def cancel(self) -> None:
        self._call.cancel()


def explained(status: CallStatus, address: str) -> CallStatus:
    """`status`, with the instance named when grpc's own words for a refused connection do not."""
    if status.code is grpc.StatusCode.UNAVAILABLE and status.message.startswith("failed to connect"):
        message = f"upstream {address} is unreachable: {status.message}"
        return CallStatus(status.code, message, status.details)
    return status
