"""Checks of Mux requests: every bad field named in one INVALID_ARGUMENT, with what was wrong."""

from __future__ import annotations

import re

import grpc

from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.gateway.grpcweb.bridge import INTERNAL_METHODS
from trademesh.gateway.grpcweb.methods import MethodKind, method_kind
from trademesh.gateway.grpcweb.status import CallRefused
from trademesh.mux.v1 import mux_pb2 as pb

__all__ = ["MUX_SERVICE", "check_add", "check_remove", "upstream_method"]

MUX_SERVICE = "trademesh.mux.v1.Mux"

_SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_METHOD = re.compile(r"/?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)/([A-Za-z_][A-Za-z0-9_]*)")
# The registry's instance names (trademesh.gateway.registry.validate).
_TARGET = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
# Session ids are 24 URL-safe characters; anything much longer is not one.
_MAX_SESSION_ID = 128


def check_add(request: pb.AddRequest) -> None:
    violations = _session_id(request.session_id) + _subscription_id(request.subscription_id)
    if _METHOD.fullmatch(request.method) is None:
        shown = repr(request.method) if request.method else "empty"
        violations.append(
            FieldViolation(
                "method",
                f"{shown} is not a full method name <package>.<Service>/<Method> "
                "(e.g. trademesh.marketdata.v1.MarketData/Subscribe)",
            )
        )
    if request.target and _TARGET.fullmatch(request.target) is None:
        violations.append(
            FieldViolation(
                "target", f"{request.target!r} is not an instance name (1-63 of a-z 0-9 _ . -, e.g. sim)"
            )
        )
    if violations:
        raise InvalidArgument(violations)


def check_remove(request: pb.RemoveRequest) -> None:
    violations = _session_id(request.session_id) + _subscription_id(request.subscription_id)
    if violations:
        raise InvalidArgument(violations)


def upstream_method(text: str) -> tuple[str, str]:
    """(service, method) of a checked AddRequest.method that a subscription may call.

    Mesh-internal methods are PERMISSION_DENIED, as over gRPC-web; a method the gateway knows
    to be unary, client or bidi streaming, or the Mux itself, is INVALID_ARGUMENT. A method of a
    contract the gateway does not know is called as a server stream, like the bridge does.
    """
    match = _METHOD.fullmatch(text)
    assert match is not None, "check_add() first"
    service, method = match.group(1), match.group(2)
    if f"{service}/{method}" in INTERNAL_METHODS:
        raise CallRefused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{service}/{method} is mesh-internal: call it on the gateway's native gRPC port "
            "with the mesh token",
        )
    if service == MUX_SERVICE:
        raise InvalidArgument.field("method", f"{text!r}: the Mux cannot subscribe to itself")
    kind = method_kind(service, method)
    if kind is not None and kind is not MethodKind.SERVER_STREAM:
        shape = kind.value.replace("_", " ")
        raise InvalidArgument.field(
            "method", f"{text!r} is a {shape} method: subscriptions call server-streaming ones"
        )
    return service, method


def _session_id(session_id: str) -> list[FieldViolation]:
    if not session_id:
        return [FieldViolation("session_id", "empty: pass the session_id of the Open stream's first frame")]
    if len(session_id) > _MAX_SESSION_ID:
        return [FieldViolation("session_id", f"{len(session_id)} characters is not a session id")]
    return []


def _subscription_id(subscription_id: str) -> list[FieldViolation]:
    if _SUBSCRIPTION_ID.fullmatch(subscription_id):
        return []
    shown = repr(subscription_id) if len(subscription_id) <= 80 else f"{len(subscription_id)} characters"
    if not subscription_id:
        shown = "empty"
    return [FieldViolation("subscription_id", f"{shown} is not 1-64 of A-Z a-z 0-9 _ . : -")]
