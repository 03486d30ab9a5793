"""The screens' latest results, and StreamResults' subscribers (trademesh.core.platform.rpc.watchers: each a
bounded queue of the screens it asked for; one that falls behind is ended, RESOURCE_EXHAUSTED,
and calls again) rather than skipping a result silently."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.core.platform.rpc.watchers import StreamSubscriber, Watchers
from trademesh.core.screener.engine.definition import Screen
from trademesh.screener.v1 import screener_pb2 as sc

__all__ = ["MAX_NAMES", "Results"]

MAX_NAMES = 1000


class Results:
    """The screens loaded, each one's latest result (as sent), and the subscribers to new ones."""

    def __init__(self, screens: Mapping[str, Screen], queue_size: int = 100) -> None:
        self.screens = dict(sorted(screens.items()))
        self.latest: dict[str, sc.ScreenResult] = {}
        self._watchers: Watchers[sc.ScreenResult] = Watchers(queue_size)

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

    def watch(self, screens: frozenset[str]) -> StreamSubscriber[sc.ScreenResult]:
        return self._watchers.watch(lambda result: result.screen in screens)

    def drop(self, watcher: StreamSubscriber[sc.ScreenResult]) -> None:
        self._watchers.drop(watcher)

    def publish(self, result: sc.ScreenResult) -> None:
        self.latest[result.screen] = result
        self._watchers.publish([result])

    async def close(self) -> None:
        """End every stream (the service is stopping): each reader sees the end after its queue."""
        await self._watchers.close()
