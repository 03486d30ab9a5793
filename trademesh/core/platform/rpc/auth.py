"""Bearer-token auth of a service's RPCs: the mesh token, and a stronger credential for a few.

Every service takes `authorization: Bearer <mesh token>` on its RPCs. A service may also declare
privileged methods (a Privileged: a venue's order RPCs) that take only a second credential; that
credential is good for every other method too. Resolved once per method, when handlers are
wrapped (trademesh.core.platform.rpc.edge), so a call costs a metadata scan and one or two
constant-time compares.

Outcomes of a privileged method:
- the privileged credential: served;
- anything good for the service's other methods (the mesh token, or anything at all when the mesh
  token is off): PERMISSION_DENIED, naming the credential it needs and why (or that the service has
  none configured: it fails closed);
- a wrong or missing token otherwise: UNAUTHENTICATED, as on any other method.
Neither token ever appears in a message or a log line.

A method may also be privileged only when its request sets a boolean field (`when_set`: Admin's
Drain with cancel_open_orders cancels every order, so it takes the trading credential, while a
plain Drain takes the mesh token): checked once the request is decoded.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from trademesh.core.platform.errors import InvalidArgument, PermissionDenied, Unauthenticated

__all__ = ["DENIED", "BearerAuth", "MethodAuth", "Privileged", "bearer_token", "check_distinct"]

DENIED = "missing or wrong bearer token (send metadata `authorization: Bearer <token>`)"


@dataclass(frozen=True)
class Privileged:
    """Methods that need a credential stronger than the mesh token, and what to say about it.

    `methods`: full method names as gRPC sends them ("/package.Service/Method").
    `credential`: what the credential is, for messages ("trading credential").
    `variable`: the environment variable that holds it (never its value).
    `why`: who alone holds it, the end of a refusal ("only the inspector places orders").
    """

    methods: frozenset[str]
    credential: str
    variable: str
    why: str
    # (method, field): the method is privileged when its request's boolean `field` is set.
    when_set: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        for method in (*self.methods, *(m for m, _ in self.when_set)):
            service, _, name = method.lstrip("/").partition("/")
            if not method.startswith("/") or not service or not name or "/" in name:
                raise InvalidArgument.field("methods", f"{method!r} is not a /package.Service/Method name")


def check_distinct(token: str | None, privileged: Privileged | None, privileged_token: str | None) -> None:
    """InvalidArgument, naming the variable (never a value), when the privileged token is the mesh
    token: every service holds that one, so the privilege would be no privilege."""
    if privileged_token is None:
        return
    if privileged is None:
        raise ValueError("a privileged token without privileged methods")
    if token is not None and hmac.compare_digest(token.encode(), privileged_token.encode()):
        raise InvalidArgument.field(
            privileged.variable,
            "must differ from the mesh token (TRADEMESH_TOKEN): every service holds that one",
        )


class MethodAuth(Protocol):
    """The auth of one method: raises Unauthenticated or PermissionDenied, or lets the call in."""

    def check_metadata(self, metadata: Iterable[tuple[str, Any]]) -> None: ...

    def check_request(self, metadata: Iterable[tuple[str, Any]], request: Any) -> None:
        """What the decoded request needs besides (a privileged field set: the credential)."""


def bearer_token(metadata: Iterable[tuple[str, Any]]) -> bytes | None:
    """The token of the first `authorization` entry when its scheme is Bearer (any case, RFC 6750)."""
    for key, value in metadata:
        if key == "authorization":
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            scheme, _, token = text.strip().partition(" ")
            return token.strip().encode() if scheme.lower() == "bearer" else None
    return None


def _matches(presented: bytes | None, expected: bytes | None) -> bool:
    if presented is None or expected is None:
        return False
    return hmac.compare_digest(presented, expected)


class _Tokens:
    """A method that takes any of the accepted tokens (the mesh token, the privileged one)."""

    def __init__(self, accepted: tuple[bytes, ...]) -> None:
        self._accepted = accepted

    def check_metadata(self, metadata: Iterable[tuple[str, Any]]) -> None:
        presented = bearer_token(metadata)
        # Every token is compared (no early exit): the time says nothing about which one matched.
        if not sum(_matches(presented, token) for token in self._accepted):
            raise Unauthenticated(DENIED)

    def check_request(self, metadata: Iterable[tuple[str, Any]], request: Any) -> None:
        return None


class _PrivilegedWhenSet(_Tokens):
    """A method any good caller may call, but with `field` set only the privileged caller."""

    def __init__(self, accepted: tuple[bytes, ...], privileged: _PrivilegedMethod, field: str) -> None:
        super().__init__(accepted)
        self._privileged = privileged
        self._field = field
        self._open = self._privileged.mesh_off  # no mesh token: the plain call is open

    def check_metadata(self, metadata: Iterable[tuple[str, Any]]) -> None:
        if not self._open:
            super().check_metadata(metadata)

    def check_request(self, metadata: Iterable[tuple[str, Any]], request: Any) -> None:
        if getattr(request, self._field, False):
            self._privileged.check_metadata(metadata)


class _PrivilegedMethod:
    """A privileged method: only the privileged token; PERMISSION_DENIED to any other good caller."""

    def __init__(self, mesh: bytes | None, privileged: bytes | None, refusal: str) -> None:
        self._mesh = mesh
        self._privileged = privileged
        self._refusal = refusal

    @property
    def mesh_off(self) -> bool:
        return self._mesh is None

    def check_metadata(self, metadata: Iterable[tuple[str, Any]]) -> None:
        presented = bearer_token(metadata)
        privileged = _matches(presented, self._privileged)
        mesh = _matches(presented, self._mesh)
        if privileged:
            return
        if self._mesh is None or mesh:
            raise PermissionDenied(self._refusal)
        raise Unauthenticated(DENIED)

    def check_request(self, metadata: Iterable[tuple[str, Any]], request: Any) -> None:
        return None


class BearerAuth:
    """The auth of one server: the mesh token (None: off) and, optionally, privileged methods with
    their token (None: the service has none; they are refused while the mesh token is on)."""

    def __init__(
        self,
        token: str | None,
        privileged: Privileged | None = None,
        privileged_token: str | None = None,
        label: str = "this service",
    ) -> None:
        check_distinct(token, privileged, privileged_token)
        self._mesh = None if token is None else token.encode()
        self._privileged = privileged
        self._privileged_token = None if privileged_token is None else privileged_token.encode()
        self._label = label

    @property
    def is_off(self) -> bool:
        """True when no method needs a token (no mesh token, no privileged token)."""
        return self._mesh is None and self._privileged_token is None

    def for_method(self, method: str) -> MethodAuth | None:
        """The auth of a method ("/package.Service/Method"); None when it is open."""
        if self._privileged is not None and method in self._privileged.methods:
            if self._mesh is None and self._privileged_token is None:
                return None  # dev mode: everything open, as the start-up warning says
            return _PrivilegedMethod(self._mesh, self._privileged_token, self._refusal(method))
        conditional = self._conditional(method)
        if self._mesh is None and conditional is None:
            return None
        accepted = tuple(t for t in (self._mesh, self._privileged_token) if t is not None)
        if conditional is not None:
            privileged = _PrivilegedMethod(
                self._mesh, self._privileged_token, self._refusal(method, conditional)
            )
            return _PrivilegedWhenSet(accepted, privileged, conditional)
        return _Tokens(accepted)

    def _conditional(self, method: str) -> str | None:
        """The field that makes `method` privileged, when one does."""
        if self._privileged is None or (self._mesh is None and self._privileged_token is None):
            return None
        return next((f for m, f in self._privileged.when_set if m == method), None)

    def _refusal(self, method: str, field: str = "") -> str:
        assert self._privileged is not None
        name = method.rsplit("/", 1)[-1] + (f" with {field}" if field else "")
        spec = self._privileged
        if self._privileged_token is None:
            return f"{name} is refused: {self._label} has no {spec.credential} configured ({spec.variable})"
        return f"{name} needs the {spec.credential} ({spec.variable}): {spec.why}"
