"""Studio's session tokens: short-lived, signed, and checked without a database.

A token is `tms_<payload>.<mac>`: the payload (URL-safe base64 of compact JSON) names the API
key it was made from (id and name), its expiry and a nonce; the MAC is HMAC-SHA256 over the
encoded payload with a key derived from TRADEMESH_SESSION_SECRET (or a random per-process
secret, so sessions end with the process). The MAC is checked, in constant time, before the
payload is parsed. Whether the key is still live is the caller's question (trademesh.gateway.auth.cache).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.config.env import SESSION_SECRET, read_secret
from trademesh.core.platform.errors import FailedPrecondition, Unauthenticated

__all__ = [
    "MIN_SECRET_BYTES",
    "SESSION_PREFIX",
    "Session",
    "SessionSigner",
    "session_secret_from_env",
]

SESSION_PREFIX = "tms_"
MIN_SECRET_BYTES = 32
# Far longer than any token we make; a longer one is refused before any decoding.
_MAX_TOKEN_CHARS = 1024
_CONTEXT = b"trademesh studio session v1"
_FORGED = "invalid session token: log in again"


@dataclass(frozen=True)
class Session:
    key_id: int
    key_name: str
    expires_at_ms: int


def session_secret_from_env() -> bytes | None:
    secret = read_secret(SESSION_SECRET)
    return None if secret is None else secret.encode()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: bytes | None) -> None:
        if secret is not None and len(secret) < MIN_SECRET_BYTES:
            raise FailedPrecondition(
                f"{SESSION_SECRET} is {len(secret)} bytes; use at least {MIN_SECRET_BYTES}"
                " (e.g. the output of `openssl rand -hex 32`)"
            )
        # Derived, so the configured secret is used for nothing but this one purpose.
        root = secrets.token_bytes(32) if secret is None else secret
        self._mac_key = hmac.new(root, _CONTEXT, hashlib.sha256).digest()

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._mac_key, payload.encode(), hashlib.sha256).digest()

    def issue(self, key_id: int, key_name: str, ttl_s: float, now_ms: int) -> tuple[str, Session]:
        session = Session(key_id, key_name, now_ms + round(ttl_s * 1000))
        body = {"k": key_id, "n": key_name, "e": session.expires_at_ms, "r": secrets.token_urlsafe(12)}
        payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
        return f"{SESSION_PREFIX}{payload}.{_b64encode(self._mac(payload))}", session

    def verify(self, token: str, now_ms: int) -> Session:
        """The session `token` carries; Unauthenticated when it is forged, damaged or expired."""
        session = _parse(self._signed_payload(token))
        if now_ms >= session.expires_at_ms:
            raise Unauthenticated("session expired: log in again")
        return session

    def _signed_payload(self, token: str) -> bytes:
        if len(token) > _MAX_TOKEN_CHARS or not token.startswith(SESSION_PREFIX):
            raise Unauthenticated(_FORGED)
        payload, _, mac = token[len(SESSION_PREFIX) :].partition(".")
        try:
            if not hmac.compare_digest(self._mac(payload), _b64decode(mac)):
                raise Unauthenticated(_FORGED)
            return _b64decode(payload)
        except (binascii.Error, ValueError):
            raise Unauthenticated(_FORGED) from None


def _parse(payload: bytes) -> Session:
    try:
        body: Any = json.loads(payload)
        key_id, key_name, expires = body["k"], body["n"], body["e"]
    except (ValueError, TypeError, KeyError):
        raise Unauthenticated(_FORGED) from None
    if not (isinstance(key_id, int) and isinstance(key_name, str) and isinstance(expires, int)):
        raise Unauthenticated(_FORGED)
    return Session(key_id, key_name, expires)
