"""StreamRegimes' subscribers (core.foundations.watchers): each the changes of the markets its
filter names; one that falls behind is ended and starts again from a fresh board."""

from __future__ import annotations

from core.foundations.watchers import StreamSubscriber
from core.foundations.watchers import Watchers as _Watchers
from core.overwatch.engine import RegimeChange
from core.overwatch.filters import Markets

__all__ = ["RegimeWatchers", "StreamSubscriber"]


class RegimeWatchers(_Watchers[RegimeChange]):
    def watch_markets(self, markets: Markets) -> StreamSubscriber[RegimeChange]:
        return self.watch(lambda change: change.key in markets)
