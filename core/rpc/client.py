"""What a mesh service needs to call another: its bearer token as call metadata."""

from __future__ import annotations

from core.env import TOKEN, read_secret

__all__ = ["Metadata", "auth_metadata"]

Metadata = tuple[tuple[str, str], ...]


def auth_metadata() -> Metadata:
    """`authorization: Bearer <TRADEMESH_TOKEN>` when a token is set, else nothing."""
    token = read_secret(TOKEN)
    return (("authorization", f"Bearer {token}"),) if token else ()
