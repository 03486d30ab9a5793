"""StreamRegimes' subscribers (trademesh.core.platform.rpc.watchers): each the changes of the markets its
filter names; one that falls behind is ended and starts again from a fresh board."""

from __future__ import annotations

from trademesh.core.overwatch.engine import RegimeChange
from trademesh.core.overwatch.filters import Markets
from trademesh.core.platform.rpc.watchers import StreamSubscriber
from trademesh.core.platform.rpc.watchers import Watchers as _Watchers

__all__ = ["RegimeWatchers", "StreamSubscriber"]


class RegimeWatchers(_Watchers[RegimeChange]):
    def watch_markets(self, markets: Markets) -> StreamSubscriber[RegimeChange]:
        return self.watch(lambda change: change.key in markets)
