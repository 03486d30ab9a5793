"""GatewayAuth: who is calling the gateway, from an API key or a Studio session token.

Every check is answered from memory (trademesh.gateway.auth.cache); the database is read only in the
background. Messages say what to do and never repeat the credential.
"""

from __future__ import annotations

import time

from starlette.routing import BaseRoute

from trademesh.core.platform.access.contracts import Principal
from trademesh.core.platform.errors import InvalidArgument, Unauthenticated
from trademesh.gateway.auth.cache import KeyCache
from trademesh.gateway.auth.keys import KEY_PREFIX, key_digest, looks_like_key
from trademesh.gateway.auth.login import login_routes
from trademesh.gateway.auth.sessions import SESSION_PREFIX, Session, SessionSigner
from trademesh.gateway.auth.store import KeyRow, KeyStore
from trademesh.gateway.auth.throttle import LoginThrottle

__all__ = ["DEFAULT_REFRESH_S", "DEFAULT_SESSION_TTL_S", "GatewayAuth"]

DEFAULT_SESSION_TTL_S = 12 * 3600.0
# How stale the key list may be: a key revoked with the CLI stops working within this.
DEFAULT_REFRESH_S = 2.0

_MISSING = "missing bearer token: send Authorization: Bearer <API key or Studio session token>"
_SCHEME = "unsupported authorization scheme: send Authorization: Bearer <API key or Studio session token>"
_UNKNOWN_KEY = "unknown API key: create one with `trademesh keys create NAME`"
_NOT_A_TOKEN = (
    f"invalid bearer token: expected an API key ({KEY_PREFIX}...) or a session token ({SESSION_PREFIX}...)"
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _bearer(authorization: str | None) -> str:
    if authorization is None or authorization.strip() == "":
        raise Unauthenticated(_MISSING)
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated(_SCHEME)
    if credential.strip() == "":
        raise Unauthenticated(_MISSING)
    return credential.strip()


class GatewayAuth:
    def __init__(self, store: KeyStore, cache: KeyCache, signer: SessionSigner, session_ttl_s: float) -> None:
        self._store = store
        self._cache = cache
        self._signer = signer
        self._session_ttl_s = session_ttl_s
        self._throttle = LoginThrottle()

    @classmethod
    async def open(
        cls,
        database_url: str,
        session_secret: bytes | None,
        session_ttl_s: float = DEFAULT_SESSION_TTL_S,
        refresh_s: float = DEFAULT_REFRESH_S,
    ) -> GatewayAuth:
        """Keys loaded and refreshing; Unavailable when the database cannot be reached."""
        if not session_ttl_s > 0:
            raise InvalidArgument.field("session_ttl_s", f"{session_ttl_s} is not a positive duration")
        if not refresh_s > 0:
            raise InvalidArgument.field("refresh_s", f"{refresh_s} is not a positive duration")
        signer = SessionSigner(session_secret)
        store = await KeyStore.open(database_url)
        cache = KeyCache(store, refresh_s)
        try:
            await cache.load()
        except BaseException:
            await store.close()
            raise
        cache.start()
        return cls(store, cache, signer, session_ttl_s)

    async def close(self) -> None:
        await self._cache.close()
        await self._store.close()

    async def authenticate(self, authorization: str | None) -> Principal:
        credential = _bearer(authorization)
        if credential.startswith(SESSION_PREFIX):
            row = self._session_key(credential)
        elif credential.startswith(KEY_PREFIX):
            row = await self._key(credential)
        else:
            raise Unauthenticated(_NOT_A_TOKEN)
        return Principal(row.name, row.scopes)

    async def login(self, key: str) -> tuple[str, Session]:
        """A new session token made from a live API key."""
        row = await self._cache.lookup_fresh(key_digest(key)) if looks_like_key(key) else None
        if row is None or row.revoked:
            raise Unauthenticated("unknown or revoked API key")
        return self._signer.issue(row.id, row.name, self._session_ttl_s, _now_ms())

    def routes(self) -> list[BaseRoute]:
        return login_routes(self.login, self._throttle)

    def _session_key(self, token: str) -> KeyRow:
        """The live key a session was made from, as it is now: its scopes, not those at login."""
        session = self._signer.verify(token, _now_ms())
        row = self._cache.live(session.key_id)
        if row is None:
            raise Unauthenticated(
                f"the API key {session.key_name!r} of this session was revoked: log in with a live key"
            )
        return row

    async def _key(self, key: str) -> KeyRow:
        row = await self._cache.lookup_fresh(key_digest(key)) if looks_like_key(key) else None
        if row is None:
            raise Unauthenticated(_UNKNOWN_KEY)
        if row.revoked:
            raise Unauthenticated(f"API key {row.name!r} is revoked: use another key")
        return row
