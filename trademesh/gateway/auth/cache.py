"""The API keys in memory: every check is a dictionary lookup, the database is read in the
background every `refresh_s`, so a key revoked with the CLI stops working that soon after.
A key not in memory makes one early re-read (at most one per `_MISS_REFRESH_S`, shared by
every caller waiting on it), so a key created a moment ago works at once while a flood of
unknown keys costs the database one query a second.

While the database is away the last rows read stay in force (the gateway keeps serving), and
the outage is logged once, with its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.gateway.auth.store import KeyRow, KeyStore

__all__ = ["KeyCache"]

log = logging.getLogger(__name__)

_MISS_REFRESH_S = 1.0


class KeyCache:
    def __init__(self, store: KeyStore, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._by_digest: dict[bytes, KeyRow] = {}
        self._live: dict[int, KeyRow] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._loaded_at = -1e9
        self._loading = asyncio.Lock()

    async def load(self) -> None:
        self._loaded_at = asyncio.get_running_loop().time()
        rows = await self._store.rows()
        # Built aside and swapped in whole: a lookup never sees half a refresh.
        self._by_digest = {row.digest: row for row in rows}
        self._live = {row.id: row for row in rows if not row.revoked}

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="gateway-auth-keys")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def lookup(self, digest: bytes) -> KeyRow | None:
        # Keyed by the SHA-256 digest of the presented key: lookup timing can at most hint at
        # which digests exist, and a digest is no help in finding its 256-bit key.
        return self._by_digest.get(digest)

    async def lookup_fresh(self, digest: bytes) -> KeyRow | None:
        """lookup(), re-reading the keys first when the digest is unknown and the last read is
        older than _MISS_REFRESH_S; the last rows stay in force if the database is away."""
        row = self._by_digest.get(digest)
        if row is not None:
            return row
        async with self._loading:  # callers that missed together share one read
            if asyncio.get_running_loop().time() - self._loaded_at >= _MISS_REFRESH_S:
                with contextlib.suppress(Exception):  # the background loop reports outages
                    await self.load()
        return self._by_digest.get(digest)

    def live(self, key_id: int) -> KeyRow | None:
        """The live key with this id (a session's key, with its scopes now); None once revoked."""
        return self._live.get(key_id)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.load()
            except Exception as exc:  # Unavailable, or anything odd: the loop must outlive it
                if not self._failing:
                    log.warning("gateway auth: cannot refresh API keys, keeping the last ones: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("gateway auth: API keys refreshed again")
                self._failing = False
