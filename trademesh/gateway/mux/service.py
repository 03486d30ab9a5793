"""The Mux service (trademesh.mux.v1), answered by the gateway itself over gRPC-web.

Open makes a session bound to the caller's credential; Add and Remove change its
subscriptions. An Add is checked and routed like any gRPC-web call (the scope the method
needs, the method's service, the optional target instance) and forwarded with the mesh token;
the caller's own credential never leaves the gateway. See trademesh.gateway.mux.session for what a
session does with its subscriptions.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from trademesh.core.platform.access.contracts import Authenticator, Principal, Resolver
from trademesh.core.platform.access.scopes import check_scope, required_scope
from trademesh.core.platform.errors import InvalidArgument, NotFound, ResourceExhausted
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.gateway.grpcweb.forward import UpstreamCall
from trademesh.gateway.grpcweb.local import Call, Caller, UnaryAnswer
from trademesh.gateway.grpcweb.status import CallRefused, CallStatus
from trademesh.gateway.mux import metrics
from trademesh.gateway.mux.checks import MUX_SERVICE, check_add, check_remove, upstream_method
from trademesh.gateway.mux.limits import MuxLimits
from trademesh.gateway.mux.session import MuxSession, SessionOwner
from trademesh.mux.v1 import mux_pb2 as pb

__all__ = ["MUX_SERVICE", "Multiplexer"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
_CANCELLED = CallStatus(grpc.StatusCode.CANCELLED, "the client went away, or the gateway stops")
# The identity of calls when the gateway runs without authentication (tests only).
_ANONYMOUS = ""


class Multiplexer:
    """A trademesh.gateway.grpcweb.local.LocalService: pass it to the bridge as {MUX_SERVICE: it}."""

    def __init__(
        self,
        resolver: Resolver,
        upstreams: Upstreams,
        authenticator: Authenticator | None,
        limits: MuxLimits | None = None,
    ) -> None:
        self._resolver = resolver
        self._upstreams = upstreams
        self._authenticator = authenticator
        self.limits = limits or MuxLimits()
        self._sessions: dict[str, MuxSession] = {}
        self._per_key: Counter[str] = Counter()
        self._mesh_auth = list(auth_metadata())

    async def start(self, method: str, request: bytes, caller: Caller) -> Call:
        if method == "Open":
            _parse(pb.OpenRequest, request)
            return _SessionStream(self._open(caller))
        if method == "Add":
            reply: Message = self._add(_parse(pb.AddRequest, request), caller)
        elif method == "Remove":
            reply = self._remove(_parse(pb.RemoveRequest, request), caller)
        else:
            raise CallRefused(grpc.StatusCode.UNIMPLEMENTED, f"{MUX_SERVICE} has no method {method!r}")
        return UnaryAnswer(reply.SerializeToString())

    async def close(self) -> None:
        """Ends every session (UNAVAILABLE) and waits for their upstream calls to be cancelled."""
        stopping = CallStatus(grpc.StatusCode.UNAVAILABLE, "the gateway is stopping; open again")
        sessions = list(self._sessions.values())
        for session in sessions:
            session.fail(stopping)
        await asyncio.gather(*(s.wait_closed() for s in sessions))

    def _open(self, caller: Caller) -> MuxSession:
        owner = _owner(caller)
        if self._per_key[owner.key_name] >= self.limits.max_sessions_per_key:
            raise ResourceExhausted(
                f"API key {owner.key_name!r} has {self._per_key[owner.key_name]} mux sessions open, the most "
                "allowed: close another tab or Open stream of it first"
            )
        session = MuxSession(
            secrets.token_urlsafe(18), owner, self.limits, self._recheck(caller), self._closed
        )
        self._sessions[session.id] = session
        self._per_key[owner.key_name] += 1
        metrics.SESSIONS.inc()
        log.info(
            "mux %s opened for key %r (%d open)", session.tag, owner.key_name, self._per_key[owner.key_name]
        )
        return session

    def _closed(self, session: MuxSession) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        self._per_key[session.owner.key_name] -= 1
        if self._per_key[session.owner.key_name] <= 0:
            del self._per_key[session.owner.key_name]
        metrics.SESSIONS.dec()
        status = session.status()
        log.info(
            "mux %s of key %r closed: %s %s", session.tag, session.owner.key_name, status.name, status.message
        )

    def _add(self, request: pb.AddRequest, caller: Caller) -> pb.AddResponse:
        check_add(request)
        session = self._owned(request.session_id, caller)
        service, method = upstream_method(request.method)
        if caller.principal is not None:
            # The same rule as a direct call: a session subscribes to nothing its key may not call.
            check_scope(caller.principal, service, method, request.request)
        session.check_room(request.subscription_id)
        address = self._resolver.resolve(service, request.target or None)
        call = UpstreamCall(
            self._upstreams.channel(address),
            f"/{service}/{method}",
            request.request,
            streaming=True,
            timeout_s=None,
            metadata=[*caller.metadata, *self._mesh_auth],
        )
        scope = required_scope(service, method, request.request)
        session.add(request.subscription_id, call, address, scope)
        sid = request.subscription_id
        log.debug("mux %s: %s added: %s/%s at %s", session.tag, sid, service, method, address)
        metrics.SUBSCRIPTIONS_ADDED.labels(*metrics.method_labels(service, method)).inc()
        return pb.AddResponse(subscription_id=request.subscription_id)

    def _remove(self, request: pb.RemoveRequest, caller: Caller) -> pb.RemoveResponse:
        check_remove(request)
        session = self._owned(request.session_id, caller)
        return pb.RemoveResponse(removed=session.remove(request.subscription_id))

    def _owned(self, session_id: str, caller: Caller) -> MuxSession:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(
                f"mux session {session_id!r} is not open on this gateway (its stream ended, or another "
                "gateway serves it): open one with Mux/Open"
            )
        if session.owner != _owner(caller):
            raise CallRefused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"mux session {session_id!r} belongs to another credential: change it with the API key "
                "or Studio session that opened it",
            )
        return session

    def _recheck(self, caller: Caller) -> _Recheck:
        return _Recheck(self._authenticator, caller.authorization)


class _Recheck:
    """Authenticates the session's credential again (a no-op when auth is off)."""

    def __init__(self, authenticator: Authenticator | None, authorization: str | None) -> None:
        self._authenticator = authenticator
        self._authorization = authorization

    async def __call__(self) -> Principal | None:
        if self._authenticator is None:
            return None
        return await self._authenticator.authenticate(self._authorization)


class _SessionStream:
    """The Open call: the session's frames as the stream's messages (a grpcweb.local.Call)."""

    def __init__(self, session: MuxSession) -> None:
        self._session = session

    def messages(self) -> AsyncIterator[bytes]:
        return self._session.frames()

    async def status(self) -> CallStatus:
        return self._session.status()

    async def response_metadata(self) -> list[tuple[str, str]]:
        return []

    async def trailing_metadata(self) -> list[tuple[str, str]]:
        return []

    def cancel(self) -> None:
        # The bridge cancels when the client went away or the gateway stops.
        self._session.fail(_CANCELLED)


def _owner(caller: Caller) -> SessionOwner:
    key_name = _ANONYMOUS if caller.principal is None else caller.principal.key_name
    credential = (caller.authorization or "").strip().partition(" ")[2].strip()
    return SessionOwner(key_name, hashlib.sha256(credential.encode()).digest())


def _parse(kind: type[M], request: bytes) -> M:
    try:
        return kind.FromString(request)
    except DecodeError as exc:
        raise InvalidArgument.field("body", f"not a {kind.DESCRIPTOR.full_name}: {exc}") from None
