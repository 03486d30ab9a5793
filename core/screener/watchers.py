"""The screens' latest results, and StreamResults' subscribers: each a bounded queue of results,
fed without awaiting. A queue that fills (a client reading too slowly) ends that subscription
(RESOURCE_EXHAUSTED; the client calls again) rather than skipping a result silently."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

from core.foundations.errors import FieldViolation, InvalidArgument, shown
from core.screener.engine.definition import Screen
from trademesh.screener.v1 import screener_pb2 as sc

__all__ = ["MAX_NAMES", "Results", "Watcher"]

MAX_NAMES = 1000


class Watcher:
    def __init__(self, screens: frozenset[str], size: int) -> None:
        self.screens = screens
        self.queue: asyncio.Queue[sc.ScreenResult | None] = asyncio.Queue(size)
        self.overflowed = False

    def offer(self, result: sc.ScreenResult) -> bool:
        """Queue a result it asked for; False once it has fallen behind (closed)."""
        if self.overflowed:
            return False
        if result.screen not in self.screens:
            return True
        try:
            self.queue.put_nowait(result)
        except asyncio.QueueFull:
            self.overflowed = True
            self.end()
            return False
        return True

    def end(self) -> None:
        """Wake the reader with the end: the queue's oldest item makes room for it."""
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()


class Results:
    """The screens loaded, each one's latest result (as sent), and the subscribers to new ones."""

    def __init__(self, screens: Mapping[str, Screen], queue_size: int = 100) -> None:
        self.screens = dict(sorted(screens.items()))
        self.latest: dict[str, sc.ScreenResult] = {}
        self._size = queue_size
        self._watchers: set[Watcher] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._watchers)

    def screen(self, name: str, field: str) -> Screen:
        """The screen `name`; InvalidArgument naming `field` when none is loaded by that name."""
        screen = self.screens.get(name)
        if screen is None:
            raise InvalidArgument.field(field, self._unknown(name))
        return screen

    def names(self, asked: Collection[str], field: str) -> frozenset[str]:
        """The screens asked for (every one when none is); InvalidArgument naming each bad item."""
        if len(asked) > MAX_NAMES:
            raise InvalidArgument.field(field, f"{len(asked)} items, at most {MAX_NAMES}")
        bad = [
            FieldViolation(f"{field}[{i}]", self._unknown(n))
            for i, n in enumerate(asked)
            if n not in self.screens
        ]
        if bad:
            raise InvalidArgument(bad)
        return frozenset(asked or self.screens)

    def _unknown(self, name: str) -> str:
        known = ", ".join(self.screens) or "none"
        return f"{shown(name)} is not a screen loaded (loaded: {known})"

    def watch(self, screens: frozenset[str]) -> Watcher:
        watcher = Watcher(screens, self._size)
        if self.closed:
            watcher.end()
        else:
            self._watchers.add(watcher)
        return watcher

    def drop(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, result: sc.ScreenResult) -> None:
        self.latest[result.screen] = result
        for watcher in list(self._watchers):
            if not watcher.offer(result):
                self._watchers.discard(watcher)

    async def close(self) -> None:
        """End every stream (the service is stopping): each reader sees the end after its queue."""
        self.closed = True
        for watcher in self._watchers:
            watcher.end()
        self._watchers.clear()
