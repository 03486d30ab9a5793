"""Who calls and where a call goes: the scopes a key holds, the principal behind a call, the
resolver that finds an instance, the authenticator and the target header.

The gateway's parts (the gRPC-web bridge, the app registry, auth, MCP) and the services' tools
(trademesh.core.tools) meet only through these names, so each can be read, tested and replaced on its
own; they are a foundation (trademesh.core.platform.access), so no service imports the gateway for them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

__all__ = ["KEY_HEADER", "TARGET_HEADER", "Authenticator", "Principal", "Resolver", "Scope"]

# Names the instance to call when several serve the same gRPC service (e.g. two venues
# both serve trademesh.marketdata.v1.MarketData): `x-trademesh-target: sim`.
TARGET_HEADER = "x-trademesh-target"
# The API key a call through the gateway came with, by name: the gateway sets it on what it
# forwards (a client's own header of this name never crosses, trademesh.gateway.grpcweb.headers), so a
# service behind it can hold each key to its share (trademesh.gateway.logs: following Tails per key).
KEY_HEADER = "x-trademesh-key"


class Scope(enum.StrEnum):
    """What an API key may do;
    each method needs one (trademesh.core.platform.access.scopes), a key holds any set."""

    # Everything that changes nothing: market data, status, orders, balances, positions.
    READ = "read"
    # Placing and cancelling orders, and the dead-man switch (Admin/Heartbeat). The venues take
    # these only with the trading credential, which the gateway does not hold: a call the scope
    # lets through is refused by the venue (PERMISSION_DENIED); only the inspector trades.
    TRADE = "trade"
    # Operating venues: Drain, Reconnect, Add/RemoveSubscriptions; and any unclassified method.
    ADMIN = "admin"
    # Inspector's emergency button (SetMode CLOSE_ALL: cancel everything, flatten every
    # position): never implied by `trade` or `admin`, granted on purpose
    # (trademesh.core.platform.access.scopes).
    CLOSE_ALL = "close_all"


@dataclass(frozen=True)
class Principal:
    """Who made a call: the API key's name and its scopes now (a Studio session carries its
    key's name, and gets the key's current scopes, not those it had at login)."""

    key_name: str
    scopes: frozenset[Scope] = frozenset()


class Resolver(Protocol):
    def resolve(self, service: str, target: str | None) -> str:
        """The "host:port" of a live instance serving `service` (a full gRPC service name).

        `target` is the instance name from TARGET_HEADER, or None. Raises
        trademesh.core.platform.errors.NotFound when no live instance matches, FailedPrecondition
        when several do and no target is given.
        """
        ...

    def names(self, service: str) -> list[str]:
        """Names of the live instances serving `service`, sorted (e.g. every venue's name)."""
        ...


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> Principal:
        """Check an `Authorization: Bearer ...` header value (an API key or a session token).

        Raises trademesh.core.platform.errors.Unauthenticated with a message a user can act on
        (missing, unknown, revoked or expired), never echoing the credential.
        """
        ...
