"""What the gateway's parts promise each other: routing, authentication and the target header.

The gRPC-web bridge (gateway.grpcweb), the app registry (gateway.registry), auth
(gateway.auth) and MCP (gateway.mcp) meet only through these names, so each can be read,
tested and replaced on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["TARGET_HEADER", "Authenticator", "Principal", "Resolver"]

# Names the instance to call when several serve the same gRPC service (e.g. two venues
# both serve trademesh.marketdata.v1.MarketData): `x-trademesh-target: sim`.
TARGET_HEADER = "x-trademesh-target"


@dataclass(frozen=True)
class Principal:
    """Who made a call: the API key's name (a Studio session carries its key's name)."""

    key_name: str


class Resolver(Protocol):
    def resolve(self, service: str, target: str | None) -> str:
        """The "host:port" of a live instance serving `service` (a full gRPC service name).

        `target` is the instance name from TARGET_HEADER, or None. Raises core.errors.NotFound
        when no live instance matches, FailedPrecondition when several do and no target is given.
        """
        ...

    def names(self, service: str) -> list[str]:
        """Names of the live instances serving `service`, sorted (e.g. every venue's name)."""
        ...


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> Principal:
        """Check an `Authorization: Bearer ...` header value (an API key or a session token).

        Raises core.errors.Unauthenticated with a message a user can act on (missing, unknown,
        revoked or expired), never echoing the credential.
        """
        ...
