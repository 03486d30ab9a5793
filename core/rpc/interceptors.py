"""Server interceptors: bearer-token auth, and the edge that maps errors and records metrics."""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

from core.errors import TrademeshError
from core.rpc import metrics
from core.rpc.status import code_for, to_status

__all__ = ["OPEN_SERVICES", "BearerAuthInterceptor", "EdgeInterceptor"]

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
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _kind(handler: Handler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _rebuild(handler: Handler, behavior: Any) -> Handler:
    make = {
        "unary": grpc.unary_unary_rpc_method_handler,
        "server_stream": grpc.unary_stream_rpc_method_handler,
        "client_stream": grpc.stream_unary_rpc_method_handler,
        "bidi_stream": grpc.stream_stream_rpc_method_handler,
    }[_kind(handler)]
    return make(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _PerMethod:
    """Handlers built once per method and reused: building them on every call costs a lot.

    Keyed by the inner handler too, since what an inner interceptor returns (the real
    handler or a denial) can differ from call to call.
    """

    def __init__(self, build: Callable[[str, Handler], Handler]) -> None:
        self._build = build
        self._built: dict[tuple[str, int], tuple[Handler, Handler]] = {}

    def get(self, method: str, inner: Handler) -> Handler:
        key = (method, id(inner))
        found = self._built.get(key)
        if found is None or found[0] is not inner:
            found = self._built[key] = (inner, self._build(method, inner))
        return found[1]


def _behavior(handler: Handler) -> Any:
    return handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED unless `authorization: Bearer <token>` matches (constant-time compare)."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()
        self._denials = _PerMethod(_denial)

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None or _split(details.method)[0] in OPEN_SERVICES:
            return handler
        if self._authorized(details.invocation_metadata or ()):
            return handler
        return self._denials.get(details.method, handler)

    def _authorized(self, metadata: tuple[tuple[str, str | bytes], ...]) -> bool:
        for key, value in metadata:
            if key == "authorization":
                text = value.decode(errors="replace") if isinstance(value, bytes) else value
                scheme, _, token = text.strip().partition(" ")
                # The scheme is case-insensitive (RFC 6750); the token is compared in constant time.
                return scheme.lower() == "bearer" and hmac.compare_digest(
                    token.strip().encode(), self._expected
                )
        return False


_DENIED = "missing or wrong bearer token (send metadata `authorization: Bearer <token>`)"


def _denial(method: str, handler: Handler) -> Handler:
    return _rebuild(handler, _deny_stream if handler.response_streaming else _deny)


async def _deny(request: Any, context: Context) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)


async def _deny_stream(request: Any, context: Context) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)
    yield  # type: ignore[unreachable]  # makes this an async generator


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
        method.started.inc()

    def finish(self) -> None:
        self.method.handled(self.code).inc()
        self.method.seconds.observe(time.perf_counter() - self.started)

    async def fail(self, exc: BaseException, context: Context) -> None:
        """Settle the status for an exception; abort for our errors and for bugs."""
        if isinstance(exc, TrademeshError):
            self.code = code_for(exc)
            await context.abort_with_status(to_status(exc))
        elif isinstance(exc, grpc.aio.AbortError):
            # grpc leaves code() unset (None) when an abort carried no code.
            code = cast("grpc.StatusCode | None", context.code())
            self.code = grpc.StatusCode.UNKNOWN if code is None else code
        elif isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            # The client went away or the server is stopping: nothing to answer.
            self.code = grpc.StatusCode.CANCELLED
        else:
            log.exception("unhandled error in %s/%s", self.labels[1], self.labels[2])
            self.code = grpc.StatusCode.INTERNAL
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; the service log has details")


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """Outermost: turns TrademeshError into rich statuses and counts every RPC and message."""

    def __init__(self) -> None:
        self._wrapped = _PerMethod(_wrap)

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        return self._wrapped.get(details.method, handler)


def _wrap(method: str, handler: Handler) -> Handler:
    labels = (_kind(handler), *_split(method))
    inner = _behavior(handler)
    if handler.response_streaming:
        return _rebuild(handler, _wrap_stream(inner, labels))
    return _rebuild(handler, _wrap_unary(inner, labels))


def _wrap_unary(inner: Any, labels: tuple[str, str, str]) -> Any:
    method = _MethodMetrics(labels)

    async def behavior(request: Any, context: Context) -> Any:
        call = _Call(method)
        try:
            return await inner(request, context)
        except BaseException as exc:
            await call.fail(exc, context)
            raise
        finally:
            call.finish()

    return behavior


def _wrap_stream(inner: Any, labels: tuple[str, str, str]) -> Any:
    if not inspect.isasyncgenfunction(inner):
        # A handler that sends with context.write (grpc's Health/Watch): grpc picks the
        # calling style from the behavior's kind, so the wrapper must be a coroutine too.
        return _wrap_unary(inner, labels)
    method = _MethodMetrics(labels)
    sent = method.sent

    async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
        call = _Call(method)
        try:
            async for message in inner(request, context):
                yield message
                sent.inc()
        except BaseException as exc:
            await call.fail(exc, context)
            raise
        finally:
            call.finish()

    return behavior
