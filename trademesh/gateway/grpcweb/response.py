"""Writes one gRPC-web answer to the ASGI connection: headers, data frames, the trailer frame.

An error before any message is answered trailers-only: the status in the HTTP headers and
an empty body, as gRPC-web clients expect.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from starlette.types import Send

from trademesh.gateway.grpcweb.framing import data_frame, trailer_frame
from trademesh.gateway.grpcweb.status import CallStatus
from trademesh.gateway.grpcweb.text import encode_text

__all__ = ["BINARY_TYPE", "TEXT_TYPE", "ResponseWriter"]

BINARY_TYPE = "application/grpc-web+proto"
TEXT_TYPE = "application/grpc-web-text+proto"


class ResponseWriter:
    def __init__(self, send: Send, text: bool, headers: Sequence[tuple[str, str]]) -> None:
        self._send = send
        self._text = text
        self._headers = [("content-type", TEXT_TYPE if text else BINARY_TYPE), *headers]
        self.started = False
        self.finished = False

    async def message(self, message: bytes, metadata: Sequence[tuple[str, str]] = ()) -> None:
        if not self.started:
            await self._start(metadata)
        await self._body(data_frame(message), more=True)

    async def finish(self, status: CallStatus, metadata: Sequence[tuple[str, str]] = ()) -> None:
        """The status: a trailer frame after messages, or trailers-only when none was sent."""
        if self.finished:
            return
        if not self.started and status.code is not grpc.StatusCode.OK:
            await self._start([*metadata, *status.trailers()])
            await self._body(b"", more=False)
        else:
            if not self.started:
                await self._start(())
            await self._body(trailer_frame([*status.trailers(), *metadata]), more=False)
        self.finished = True

    async def _start(self, headers: Sequence[tuple[str, str]]) -> None:
        self.started = True
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in [*self._headers, *headers]]
        await self._send({"type": "http.response.start", "status": 200, "headers": raw})

    async def _body(self, chunk: bytes, more: bool) -> None:
        if self._text and chunk:
            # Each frame on its own: a client decodes it as soon as it arrives.
            chunk = encode_text(chunk)
        await self._send({"type": "http.response.body", "body": chunk, "more_body": more})
