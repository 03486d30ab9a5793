"""API keys as values: their names, how they are made, and the digest that is stored.

A key is `tmk_` plus 32 random bytes (URL-safe base64): 256 bits, so a plain SHA-256 digest
is safe to store (nobody can guess a preimage; slow password hashes are for low-entropy
secrets). The key itself exists only on the creator's screen and in the file they keep.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

from trademesh.core.platform.access.contracts import Scope
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = [
    "KEY_PREFIX",
    "NAME_PATTERN",
    "check_name",
    "check_scope_name",
    "key_digest",
    "looks_like_key",
    "new_key",
    "stored_scopes",
]

KEY_PREFIX = "tmk_"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_KEY_BODY = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32): 43 characters, no padding


def check_name(name: str) -> str:
    """`name` when it is a valid key name; InvalidArgument naming it otherwise."""
    if NAME_PATTERN.fullmatch(name) is None:
        raise InvalidArgument.field(
            "name",
            f"{name!r} is not a key name: 1-63 characters of a-z, 0-9, '_', '.', '-',"
            " starting with a letter or digit",
        )
    return name


def check_scope_name(name: str) -> Scope:
    """The Scope called `name`; InvalidArgument naming it and the known ones otherwise."""
    try:
        return Scope(name)
    except ValueError:
        known = ", ".join(scope.value for scope in Scope)
        raise InvalidArgument.field("scope", f"{shown(name)} is not a scope: use {known}") from None


def stored_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """The scopes of a stored key; a name this version does not know grants nothing."""
    known = {scope.value for scope in Scope}
    return frozenset(Scope(name) for name in names if name in known)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX) and _KEY_BODY.fullmatch(text[len(KEY_PREFIX) :]) is not None


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
