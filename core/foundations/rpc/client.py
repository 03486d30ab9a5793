"""What a mesh service needs to call another: its bearer token as call metadata.

Every service holds the mesh token (TRADEMESH_TOKEN). The trading credential
(TRADEMESH_TRADE_TOKEN) is the inspector's alone: a venue places and cancels orders only for it.
"""

from __future__ import annotations

from core.foundations.env import TOKEN, TRADE_TOKEN, read_secret

__all__ = ["Metadata", "auth_metadata", "trade_auth_metadata"]

Metadata = tuple[tuple[str, str], ...]


def auth_metadata() -> Metadata:
    """`authorization: Bearer <TRADEMESH_TOKEN>` when a token is set, else nothing."""
    token = read_secret(TOKEN)
    return (("authorization", f"Bearer {token}"),) if token else ()


def trade_auth_metadata() -> Metadata:
    """`authorization: Bearer <TRADEMESH_TRADE_TOKEN>` when the trading credential is set, else
    nothing: what the inspector sends a venue (it is good for the venue's reads too)."""
    token = read_secret(TRADE_TOKEN)
    return (("authorization", f"Bearer {token}"),) if token else ()
