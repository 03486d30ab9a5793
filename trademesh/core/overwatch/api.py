"""The Overwatch gRPC service: the board, and the board then each change.

Errors are trademesh.core.platform.errors types, mapped to statuses by trademesh.core.platform.rpc's
edge: a bad filter is INVALID_ARGUMENT naming the field (`filter.venues[0]`), a subscriber that fell
behind RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from trademesh.core.overwatch import metrics
from trademesh.core.overwatch.convert import board_to_pb, change_to_pb
from trademesh.core.overwatch.engine import Overwatch
from trademesh.core.overwatch.filters import Markets, market_filter
from trademesh.core.overwatch.overview import OverviewSource
from trademesh.core.overwatch.overview_feed import OverviewFeed
from trademesh.core.overwatch.watchers import RegimeWatchers
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

__all__ = ["overview_feed", "overwatch_service"]

SERVICE_NAME = ow.DESCRIPTOR.services_by_name["Overwatch"].full_name


class OverwatchService(ow_grpc.OverwatchServicer):
    def __init__(
        self,
        engine: Overwatch,
        watchers: RegimeWatchers,
        feed: OverviewFeed | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.watchers = watchers
        self._clock = clock
        self.feed = feed or overview_feed(engine, None, 1.0, clock)

    def _board(self, markets: Markets) -> ow.Board:
        board = self.engine.board(self._clock())
        return board_to_pb(board, [entry for entry in board.entries if entry.key in markets])

    async def GetBoard(
        self, request: ow.GetBoardRequest, context: Context[ow.GetBoardRequest, ow.GetBoardResponse]
    ) -> ow.GetBoardResponse:
        return ow.GetBoardResponse(board=self._board(market_filter(request.filter)))

    async def StreamRegimes(
        self,
        request: ow.StreamRegimesRequest,
        context: Context[ow.StreamRegimesRequest, ow.StreamRegimesResponse],
    ) -> AsyncIterator[ow.StreamRegimesResponse]:
        markets = market_filter(request.filter)
        # Watch before taking the board, with no await between: no change falls between the two.
        watcher = self.watchers.watch_markets(markets)
        metrics.WATCHERS.set(len(self.watchers))
        try:
            yield ow.StreamRegimesResponse(board=self._board(markets))
            while (change := await watcher.queue.get()) is not None:
                yield ow.StreamRegimesResponse(change=change_to_pb(change))
            if watcher.overflowed:
                raise ResourceExhausted(
                    "overwatch: this stream fell behind its changes; call again for a fresh board"
                )
        finally:
            self.watchers.drop(watcher)
            metrics.WATCHERS.set(len(self.watchers))

    async def StreamOverview(
        self,
        request: ow.StreamOverviewRequest,
        context: Context[ow.StreamOverviewRequest, ow.StreamOverviewResponse],
    ) -> AsyncIterator[ow.StreamOverviewResponse]:
        """The newest overview at once, then each newer one: one gathering for every stream
        (trademesh.core.overwatch.overview_feed), each `every_s`."""
        with self.feed.listening() as listener:
            while True:
                yield await listener.next()


def overview_feed(
    engine: Overwatch,
    overview: OverviewSource | None,
    every_s: float,
    clock: Callable[[], int] = time.time_ns,
) -> OverviewFeed:
    """The feed of StreamOverview: the source's overview, or the board alone without one."""

    async def board_alone(now_ns: int) -> ow.Overview:
        return ow.Overview(ts_ns=now_ns, board=board_to_pb(engine.board(now_ns)))

    return OverviewFeed(board_alone if overview is None else overview.take, every_s, clock)


def overwatch_service(
    engine: Overwatch, watchers: RegimeWatchers, feed: OverviewFeed | None = None
) -> Service:
    servicer = OverwatchService(engine, watchers, feed)
    return Service(SERVICE_NAME, servicer, ow_grpc.add_OverwatchServicer_to_server)
