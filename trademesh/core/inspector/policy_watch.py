"""The policy file, reread when it changes (its modification time and size, checked every
second): a valid new set is applied as a POLICY_CHANGE; a bad one is logged with the key it
gets wrong, and the set in force stays."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from trademesh.core.inspector.runtime import Runtime
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.config.file import read_text
from trademesh.core.platform.errors import InvalidArgument, TrademeshError

__all__ = ["PolicyWatch"]

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class PolicyWatch:
    def __init__(self, path: Path | None, runtime: Runtime, every_s: float = 1.0) -> None:
        self.path = path
        self.runtime = runtime
        self.every_s = every_s

    async def run(self, stop: asyncio.Event) -> None:
        if self.path is None:
            return
        seen = None  # the first look compares the text: it may have changed since it was read
        while not await sleep_unless(stop, self.every_s):
            now = _stamp(self.path)
            if now is None or now == seen:
                continue
            seen = now
            await self._reload(self.path)

    async def _reload(self, path: Path) -> None:
        try:
            text = await asyncio.to_thread(read_text, path, "policies")
        except InvalidArgument as exc:
            log.error("inspector: %s; the set in force stays", exc)
            return
        if text == self.runtime.policies.text:
            return
        try:
            output = await self.runtime.update_policies(text, str(path))
        except TrademeshError as exc:
            log.error("inspector: policies %s not applied: %s; the set in force stays", path, exc)
            return
        log.info(
            "inspector: policies %s reloaded (%d changes)", path, sum(len(e.values) for e in output.events)
        )
