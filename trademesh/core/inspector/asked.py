"""The markets intents asked about, beyond those the inspector must follow anyway (a position or
a working order there, an active patch trading it): each is followed for `idle_s` after an
intent last asked about it, and at most `most` of them at once (the least recently asked one
goes first), so no stream of requests makes the inspector follow markets without bound. Times
are the shell's clock (monotonic seconds)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection

__all__ = ["IDLE_S", "MOST", "AskedMarkets", "Key"]

Key = tuple[str, str]  # venue, symbol
IDLE_S = 600.0
MOST = 64


class AskedMarkets:
    def __init__(self, clock: Callable[[], float], idle_s: float = IDLE_S, most: int = MOST) -> None:
        self._clock = clock
        self.idle_s = idle_s
        self.most = most
        self._at: OrderedDict[Key, float] = OrderedDict()  # least recently asked first

    def touch(self, key: Key, needed: Collection[Key]) -> list[Key]:
        """`key` asked about now; the markets dropped to stay within `most` (never a needed one)."""
        self._at[key] = self._clock()
        self._at.move_to_end(key)
        spare = [k for k in self._at if k not in needed]
        dropped = spare[: max(0, len(spare) - self.most)]
        for old in dropped:
            del self._at[old]
        return dropped

    def holds(self, key: Key) -> bool:
        return key in self._at

    def expire(self, needed: Collection[Key]) -> None:
        """Forget the markets not asked about within `idle_s` (a needed one stays)."""
        now = self._clock()
        for key in [k for k, at in self._at.items() if now - at > self.idle_s and k not in needed]:
            del self._at[key]

    def forget(self, key: Key) -> None:
        self._at.pop(key, None)

    def __len__(self) -> int:
        return len(self._at)
