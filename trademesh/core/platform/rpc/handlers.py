"""Method handlers for a service registered by hand instead of through its generated add function:
a server stream whose messages the servicer yields already encoded (the venue runtime's market
data and the bridge's live data pass bus bytes through), beside its plain unary methods."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import Message

from trademesh.core.platform.rpc.edge import Registrar

__all__ = ["add_handlers", "unary_handler", "wire_stream_handler"]


def _identity(data: bytes) -> bytes:
    return data


def unary_handler(
    method: Callable[..., Any], request: type[Message], response: type[Message]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary method, its request and answer (de)serialized as the generated code does."""
    return grpc.unary_unary_rpc_method_handler(
        method, request_deserializer=request.FromString, response_serializer=response.SerializeToString
    )


def wire_stream_handler(
    method: Callable[..., Any], request: type[Message]
) -> grpc.RpcMethodHandler[Any, Any]:
    """A server stream whose messages the servicer yields already serialized (bytes)."""
    return grpc.unary_stream_rpc_method_handler(
        method, request_deserializer=request.FromString, response_serializer=_identity
    )


def add_handlers(
    server: Registrar, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
) -> None:
    """Registers a service's handlers by method name under its full name."""
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, dict(handlers)),))
