"""The gRPC-web endpoint: POST /<package.Service>/<Method>, forwarded to a registered instance.

Per call: authenticate the bearer (not for Health), check the method's shape and scope, read the
one request message (and check the scope that request may need:
trademesh.core.platform.access.scopes), resolve the service (and the x-trademesh-target header)
to a live instance, then forward the bytes over native gRPC with the mesh token and relay the
answers as gRPC-web frames. Services the gateway serves itself (the multiplexer) are handed the
call after the same checks (trademesh.gateway.grpcweb.local). A client that goes away cancels
the call; a stopping gateway ends its open streams with UNAVAILABLE so clients reconnect
elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from trademesh.core.platform.access.contracts import (
    KEY_HEADER,
    TARGET_HEADER,
    Authenticator,
    Principal,
    Resolver,
)
from trademesh.core.platform.access.scopes import check_scope, depends_on_request
from trademesh.core.platform.errors import InvalidArgument, TrademeshError
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.server import MAX_REQUEST_BYTES
from trademesh.gateway.grpcweb import metrics
from trademesh.gateway.grpcweb.body import BodyGone, body_limit, read_body
from trademesh.gateway.grpcweb.forward import UpstreamCall, explained
from trademesh.gateway.grpcweb.framing import request_message
from trademesh.gateway.grpcweb.headers import Cors, forwarded_request_metadata
from trademesh.gateway.grpcweb.local import Call, Caller, LocalService
from trademesh.gateway.grpcweb.methods import MethodKind, method_kind
from trademesh.gateway.grpcweb.response import ResponseWriter
from trademesh.gateway.grpcweb.status import CallRefused, CallStatus
from trademesh.gateway.grpcweb.timeout import TIMEOUT_HEADER, parse_timeout

__all__ = ["INTERNAL_METHODS", "OPEN_SERVICES", "GrpcWebBridge", "GrpcWebOptions"]

log = logging.getLogger(__name__)

# Reachable without a token: load balancers and Studio must see whether the gateway is up.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health"})
# Mesh-internal: only on the gateway's native gRPC port with the mesh token. Over gRPC-web an
# API key could otherwise register its own address under a venue's name and receive calls
# (and the mesh token the gateway adds to them).
INTERNAL_METHODS = frozenset(
    f"trademesh.registry.v1.Registry/{name}" for name in ("Register", "Heartbeat", "Unregister")
)

# Protobuf's full names: what a gRPC path can name. Anything else (a NUL or a slash decoded from
# %00 or %2F, non-ASCII) names no method anywhere and is refused before it goes upstream.
_SERVICE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_METHOD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_OVER_GRPC_WEB = {MethodKind.CLIENT_STREAM: "client-streaming", MethodKind.BIDI_STREAM: "bidi-streaming"}
_BINARY_TYPES = frozenset({"application/grpc-web", "application/grpc-web+proto"})
_TEXT_TYPES = frozenset({"application/grpc-web-text", "application/grpc-web-text+proto"})


@dataclass(frozen=True)
class GrpcWebOptions:
    cors: Cors = field(default_factory=Cors)
    # Deadline of a unary call whose client sent no grpc-timeout (streams get none).
    unary_timeout_s: float = 30.0
    # The largest request message of a route that needs a token (open routes: 4 KiB), as the
    # services behind the gateway take (trademesh.gateway.grpcweb.body).
    max_request_bytes: int = MAX_REQUEST_BYTES


@dataclass(frozen=True)
class _Prepared:
    call: Call
    # Where the call goes, for messages: an upstream "host:port", or "gateway".
    address: str
    streaming: bool


class GrpcWebBridge:
    """An ASGI app answering gRPC-web calls (mount it at POST /{service}/{method})."""

    def __init__(
        self,
        resolver: Resolver,
        upstreams: Upstreams,
        authenticator: Authenticator | None,
        options: GrpcWebOptions | None = None,
        local: Mapping[str, LocalService] | None = None,
    ) -> None:
        """`local`: services the gateway answers itself, by full gRPC service name."""
        self._resolver = resolver
        self._upstreams = upstreams
        self._authenticator = authenticator
        self._options = options or GrpcWebOptions()
        self._local = dict(local or {})
        # Read once: the mesh token does not change while the gateway runs.
        self._mesh_auth = list(auth_metadata())
        self._stopping = asyncio.Event()

    def stop_streams(self) -> None:
        """Ends every open stream (UNAVAILABLE) and every stream started from now on."""
        self._stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS":
            await _plain(send, 204, "", self._options.cors.preflight_headers(origin))
            return
        text = _text_mode(headers.get("content-type", ""))
        if scope["method"] != "POST" or text is None:
            await _plain(send, 415, _UNSUPPORTED, self._options.cors.response_headers(origin))
            return
        writer = ResponseWriter(send, text, self._options.cors.response_headers(origin))
        service, _, method = scope["path"].lstrip("/").partition("/")
        labels = _labels(service, method)
        status = await self._answer(receive, headers, writer, text, service, method, labels)
        if status is not None:
            metrics.CALLS.labels(*labels, status.name).inc()

    async def _answer(
        self,
        receive: Receive,
        headers: Headers,
        writer: ResponseWriter,
        text: bool,
        service: str,
        method: str,
        labels: tuple[str, str],
    ) -> CallStatus | None:
        try:
            prepared = await self._prepare(receive, headers, service, method, text)
        except BodyGone:
            return CallStatus(grpc.StatusCode.CANCELLED)
        except TrademeshError as exc:
            status = CallStatus.from_error(exc)
        except CallRefused as exc:
            status = exc.status
        except Exception:
            log.exception("gRPC-web %s/%s: unexpected error", service, method)
            status = CallStatus(grpc.StatusCode.INTERNAL, "internal error; the gateway log has details")
        else:
            return await self._relay(prepared, writer, receive, labels)
        await writer.finish(status)
        return status

    async def _prepare(
        self, receive: Receive, headers: Headers, service: str, method: str, text: bool
    ) -> _Prepared:
        if not _SERVICE_NAME.fullmatch(service) or not _METHOD_NAME.fullmatch(method):
            raise InvalidArgument.field(
                "path", "expected /<package.Service>/<Method> (protobuf names: letters, digits, _ and .)"
            )
        principal: Principal | None = None
        if service not in OPEN_SERVICES and self._authenticator is not None:
            principal = await self._authenticator.authenticate(headers.get("authorization"))
        kind = self._check_method(service, method)
        # Most methods need one scope whatever the request: refused before the body is read.
        later = depends_on_request(service, method)
        if principal is not None and not later:
            check_scope(principal, service, method)
        timeout_text = headers.get(TIMEOUT_HEADER)
        streaming = kind is not MethodKind.UNARY
        if timeout_text is not None:
            timeout_s: float | None = parse_timeout(timeout_text)
        else:
            timeout_s = None if streaming else self._options.unary_timeout_s
        limit = body_limit(service in OPEN_SERVICES, text, self._options.max_request_bytes)
        request = request_message(await read_body(receive, headers, limit, text))
        if principal is not None and later:
            check_scope(principal, service, method, request)
        forwarded = forwarded_request_metadata(headers.items())
        if principal is not None:  # after the client's headers: never one of theirs
            forwarded.append((KEY_HEADER, principal.key_name))
        local = self._local.get(service)
        if local is not None:
            caller = Caller(principal, headers.get("authorization"), forwarded)
            return _Prepared(await local.start(method, request, caller), "gateway", streaming)
        address = self._resolver.resolve(service, headers.get(TARGET_HEADER) or None)
        call = UpstreamCall(
            self._upstreams.channel(address),
            f"/{service}/{method}",
            request,
            streaming=streaming,
            timeout_s=timeout_s,
            metadata=[*forwarded, *self._mesh_auth],
        )
        return _Prepared(call, address, streaming)

    def _check_method(self, service: str, method: str) -> MethodKind | None:
        if f"{service}/{method}" in INTERNAL_METHODS:
            raise CallRefused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{service}/{method} is mesh-internal: call it on the gateway's native gRPC port "
                "with the mesh token",
            )
        kind = method_kind(service, method)
        shape = None if kind is None else _NOT_OVER_GRPC_WEB.get(kind)
        if shape is not None:
            raise CallRefused(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{service}/{method} is a {shape} method; gRPC-web carries unary and "
                "server-streaming calls only (buf curl: pass --schema instead of reflection)",
            )
        return kind

    async def _relay(
        self, prepared: _Prepared, writer: ResponseWriter, receive: Receive, labels: tuple[str, str]
    ) -> CallStatus:
        gauge = metrics.OPEN_STREAMS.labels(*labels) if prepared.streaming else None
        if gauge is not None:
            gauge.inc()
        try:
            return await self._watch(prepared.call, prepared, writer, receive, labels)
        finally:
            if gauge is not None:
                gauge.dec()

    async def _watch(
        self,
        call: Call,
        prepared: _Prepared,
        writer: ResponseWriter,
        receive: Receive,
        labels: tuple[str, str],
    ) -> CallStatus:
        """Pumps the call while watching for the client leaving and the gateway stopping."""
        pump = asyncio.create_task(_pump(call, prepared.address, writer, labels))
        watchers: set[asyncio.Task[Any]] = {asyncio.create_task(_disconnected(receive))}
        if prepared.streaming:
            watchers.add(asyncio.create_task(self._stopping.wait()))
        try:
            await asyncio.wait({pump, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in watchers:
                task.cancel()
            if not pump.done():
                call.cancel()
                pump.cancel()
                # Not `await pump` under suppress(CancelledError): that swallowed a cancel of
                # this call's own task too (trademesh.core.platform.aio.cancellation).
                await asyncio.wait({pump})
        if not pump.cancelled():
            failure = pump.exception()
            if failure is None:
                return pump.result()
            if not isinstance(failure, OSError):
                raise failure
            # The connection broke while an answer was being written.
            return CallStatus(grpc.StatusCode.CANCELLED, "the client went away")
        if self._stopping.is_set():
            status = CallStatus(grpc.StatusCode.UNAVAILABLE, "the gateway is stopping; call again")
            with contextlib.suppress(OSError):
                await writer.finish(status)
            return status
        return CallStatus(grpc.StatusCode.CANCELLED, "the client went away")


_UNSUPPORTED = (
    "gRPC-web only: POST with content-type application/grpc-web(+proto) or "
    "application/grpc-web-text(+proto)\n"
)


def _text_mode(content_type: str) -> bool | None:
    """True for grpc-web-text, False for binary grpc-web, None for anything else."""
    media = content_type.split(";")[0].strip().lower()
    if media in _TEXT_TYPES:
        return True
    return False if media in _BINARY_TYPES else None


def _labels(service: str, method: str) -> tuple[str, str]:
    # Only methods of known contracts get their own label: paths are the client's to choose,
    # and every distinct label value is a time series kept forever.
    if method_kind(service, method) is None:
        return ("other", "other")
    return (service, method)


async def _pump(call: Call, address: str, writer: ResponseWriter, labels: tuple[str, str]) -> CallStatus:
    started = time.perf_counter()
    sent = metrics.MESSAGES_SENT.labels(*labels)
    async for message in call.messages():
        if not writer.started:
            metrics.LATENCY_SECONDS.labels(*labels).observe(time.perf_counter() - started)
            await writer.message(message, await call.response_metadata())
        else:
            await writer.message(message)
        sent.inc()
    status = explained(await call.status(), address)
    await writer.finish(status, await call.trailing_metadata())
    return status


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _plain(send: Send, status: int, text: str, headers: Sequence[tuple[str, str]]) -> None:
    body = text.encode()
    raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
