"""The API keys in memory: every check is a dictionary lookup, the database is read in the
background every `refresh_s`, so a key revoked with the CLI stops working that soon after.

While the database is away the last rows read stay in force (the gateway keeps serving), and
the outage is logged once, with its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.auth.store import KeyRow, KeyStore

__all__ = ["KeyCache"]

log = logging.getLogger(__name__)


class KeyCache:
    def __init__(self, store: KeyStore, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._by_digest: dict[bytes, KeyRow] = {}
        self._live_ids: frozenset[int] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def load(self) -> None:
        rows = await self._store.rows()
        # Built aside and swapped in whole: a lookup never sees half a refresh.
        self._by_digest = {row.digest: row for row in rows}
        self._live_ids = frozenset(row.id for row in rows if not row.revoked)

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="gateway-auth-keys")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def lookup(self, digest: bytes) -> KeyRow | None:
        # Keyed by the SHA-256 digest of the presented key: lookup timing can at most hint at
        # which digests exist, and a digest is no help in finding its 256-bit key.
        return self._by_digest.get(digest)

    def is_live(self, key_id: int) -> bool:
        return key_id in self._live_ids

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
