"""The server edge: bearer-token auth (rpc.auth), error mapping and metrics around every handler.

Handlers are wrapped once, when services register (Registrar stands in for the server),
not per call by grpc.aio interceptors: the interceptor chain cost about 35 µs a call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeAlias, cast

import grpc

from trademesh.core.platform.errors import TrademeshError, Unavailable
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc import metrics
from trademesh.core.platform.rpc.auth import BearerAuth, MethodAuth
from trademesh.core.platform.rpc.decode import RequestDecoder
from trademesh.core.platform.rpc.status import code_for, to_status

__all__ = ["OPEN_SERVICES", "BearerAuth", "Gate", "Registrar", "wrap_handler"]

log = logging.getLogger(__name__)

# Reachable without a token: load balancers and tools must see health and the schema.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _kind(handler: Handler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _rebuild(handler: Handler, behavior: Any, deserializer: Any) -> Handler:
    make = {
        "unary": grpc.unary_unary_rpc_method_handler,
        "server_stream": grpc.unary_stream_rpc_method_handler,
        "client_stream": grpc.stream_unary_rpc_method_handler,
        "bidi_stream": grpc.stream_stream_rpc_method_handler,
    }[_kind(handler)]
    return make(
        behavior,
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )


def _behavior(handler: Handler) -> Any:
    return handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream


class Gate:
    """Closed while the service starts: its own RPCs answer UNAVAILABLE until it is ready
    (`reason` says why when it is not starting: a standby names the leader)."""

    def __init__(self, service: str, open: bool = True) -> None:
        self.service = service
        self.open = open
        self.reason: str | None = None

    def check(self) -> None:
        if not self.open:
            raise Unavailable(self.reason or f"{self.service} is starting; retry shortly")


class _Edge:
    """What wraps every handler of one server: the method's auth (None: open) and the start gate."""

    def __init__(self, auth: MethodAuth | None, gate: Gate) -> None:
        self.auth = auth
        self.gate = gate

    def check(self, context: Context) -> None:
        metadata = context.invocation_metadata() or ()
        if self.auth is not None:
            self.auth.check_metadata(metadata)
        self.gate.check()
        _bind_trace(metadata)

    def check_request(self, context: Context, request: Any) -> Any:
        """The decoded request, once what it asks for is allowed to the caller."""
        if self.auth is not None:
            self.auth.check_request(context.invocation_metadata() or (), request)
        return request


def _bind_trace(metadata: Any) -> None:
    """A W3C `traceparent` (00-<trace id>-<span id>-<flags>) puts its trace id on the call's logs."""
    for key, value in metadata:
        if key == "traceparent":
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            parts = text.split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                bind_log_fields(trace_id=parts[1])
            return


class _MethodMetrics:
    """One method's labelled metrics, looked up once: labels() costs a lock and a dict per call."""

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.started = metrics.STARTED.labels(*labels)
        self.seconds = metrics.HANDLING_SECONDS.labels(*labels)
        self.sent = metrics.MSG_SENT.labels(*labels)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = metrics.HANDLED.labels(*self.labels, code.name)
        return child


class _Call:
    """Bookkeeping of one RPC for metrics; `code` is settled on the way out."""

    def __init__(self, method: _MethodMetrics) -> None:
        self.method = method
        self.labels = method.labels
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        self.finished = False
        method.started.inc()

    def finish(self) -> None:
        """Count the call once; before an abort, so a client that sees the status sees it counted."""
        if not self.finished:
            self.finished = True
            self.method.handled(self.code).inc()
            self.method.seconds.observe(time.perf_counter() - self.started)

    def settled(self, exc: BaseException, context: Context) -> bool:
        """Whether `exc` is grpc's failed send of a status already on its way (a handler's abort,
        grpc's health servicer's NOT_FOUND, met the client going away): the call is over,
        nothing more is answered and it is no bug. grpc's own handling ignores it alike."""
        if isinstance(exc, grpc.aio.InternalError) and context.done():
            code = cast("grpc.StatusCode | None", context.code())
            self.code = grpc.StatusCode.CANCELLED if code is None else code
            return True
        return False

    async def fail(self, exc: BaseException, context: Context) -> None:
        """Settle the status for an exception; abort for our errors and for bugs."""
        if isinstance(exc, TrademeshError):
            self.code = code_for(exc)
            self.finish()
            await context.abort_with_status(to_status(exc))
        elif isinstance(exc, grpc.aio.AbortError):
            # grpc leaves code() unset (None) when an abort carried no code.
            code = cast("grpc.StatusCode | None", context.code())
            self.code = grpc.StatusCode.UNKNOWN if code is None else code
        elif isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            # The client went away or the server is stopping: nothing to answer.
            self.code = grpc.StatusCode.CANCELLED
        elif isinstance(exc, NotImplementedError):
            # A method the servicer does not implement (a generated base class's default).
            self.code = grpc.StatusCode.UNIMPLEMENTED
            self.finish()
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"{self.labels[1]}/{self.labels[2]} is not implemented"
            )
        else:
            log.exception("unhandled error in %s/%s", self.labels[1], self.labels[2])
            self.code = grpc.StatusCode.INTERNAL
            self.finish()
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; the service log has details")


def wrap_handler(method: str, handler: Handler, auth: BearerAuth | None, gate: Gate | None = None) -> Handler:
    """The handler with the edge around it: auth and the start gate (unless the service is open:
    health, reflection), errors, metrics."""
    labels = (_kind(handler), *_split(method))
    method_auth = None if auth is None else auth.for_method(method)
    edge = None if _split(method)[0] in OPEN_SERVICES else _Edge(method_auth, gate or Gate(labels[1]))
    decoder = RequestDecoder(handler.request_deserializer)
    inner = _behavior(handler)
    if handler.request_streaming:
        # grpc decodes a stream's messages as they come: leniently, checked when read.
        inner, deserializer = _reading_checked(inner, decoder), decoder.lenient
        decoder = RequestDecoder(None)
    else:
        deserializer = None  # the raw body: decoded after the edge's checks
    if handler.response_streaming:
        return _rebuild(handler, _wrap_stream(inner, labels, edge, decoder), deserializer)
    return _rebuild(handler, _wrap_unary(inner, labels, edge, decoder), deserializer)


def _reading_checked(inner: Any, decoder: RequestDecoder) -> Any:
    if inspect.isasyncgenfunction(inner):

        async def streaming(requests: Any, context: Context) -> AsyncIterator[Any]:
            async for message in inner(decoder.checked(requests), context):
                yield message

        return streaming

    async def unary(requests: Any, context: Context) -> Any:
        return await inner(decoder.checked(requests), context)

    return unary


def _wrap_unary(inner: Any, labels: tuple[str, str, str], edge: _Edge | None, decode: RequestDecoder) -> Any:
    method = _MethodMetrics(labels)

    async def behavior(request: Any, context: Context) -> Any:
        call = _Call(method)
        try:
            if edge is not None:
                edge.check(context)
                return await inner(edge.check_request(context, decode(request)), context)
            return await inner(decode(request), context)
        except BaseException as exc:
            if call.settled(exc, context):
                return None  # grpc ends the call on the abort already under way
            await call.fail(exc, context)
            raise
        finally:
            call.finish()

    return behavior


def _wrap_stream(inner: Any, labels: tuple[str, str, str], edge: _Edge | None, decode: RequestDecoder) -> Any:
    if not inspect.isasyncgenfunction(inner):
        # A handler that sends with context.write (grpc's Health/Watch): grpc picks the
        # calling style from the behavior's kind, so the wrapper must be a coroutine too.
        return _wrap_unary(inner, labels, edge, decode)
    method = _MethodMetrics(labels)
    sent = method.sent

    async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
        call = _Call(method)
        try:
            if edge is not None:
                edge.check(context)
            async for message in inner(decode(request), context):
                yield message
                sent.inc()
        except BaseException as exc:
            if call.settled(exc, context):
                return  # grpc ends the call on the abort already under way
            await call.fail(exc, context)
            raise
        finally:
            call.finish()

    return behavior


class _WrappedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come out wrapped, each wrapped once."""

    def __init__(self, inner: grpc.GenericRpcHandler, auth: BearerAuth | None, gate: Gate) -> None:
        self._inner = inner
        self._auth = auth
        self._gate = gate
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(details)
        if handler is None:
            return None
        found = self._wrapped.get(details.method)
        if found is None or found[0] is not handler:
            found = self._wrapped[details.method] = (
                handler,
                wrap_handler(details.method, handler, self._auth, self._gate),
            )
        return found[1]


class Registrar:
    """Stands in for the server while services register, wrapping every handler with the edge."""

    def __init__(self, server: grpc.aio.Server, auth: BearerAuth | None, gate: Gate) -> None:
        self.server = server
        self._auth = auth
        self._gate = gate

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        wrapped = tuple(_WrappedGeneric(h, self._auth, self._gate) for h in handlers)
        self.server.add_generic_rpc_handlers(wrapped)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        wrapped = {
            name: wrap_handler(f"/{service}/{name}", h, self._auth, self._gate)
            for name, h in handlers.items()
        }
        self.server.add_registered_method_handlers(service, wrapped)
