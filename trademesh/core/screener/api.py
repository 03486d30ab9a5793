"""The Screener gRPC service: the screens, a screen's latest result, the latest then each new one.

Errors are trademesh.core.platform.errors types, mapped to statuses by trademesh.core.platform.rpc's edge: a
name not loaded is INVALID_ARGUMENT naming its field (`screen`, `screens[1]`), a subscriber that
fell behind RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.core.screener import metrics
from trademesh.core.screener.convert import screen_to_pb
from trademesh.core.screener.watchers import Results
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.screener.v1 import screener_pb2_grpc as sc_grpc

__all__ = ["screener_service"]

SERVICE_NAME = sc.DESCRIPTOR.services_by_name["Screener"].full_name


class ScreenerService(sc_grpc.ScreenerServicer):
    def __init__(self, results: Results) -> None:
        self.results = results

    async def ListScreens(
        self, request: sc.ListScreensRequest, context: Context[sc.ListScreensRequest, sc.ListScreensResponse]
    ) -> sc.ListScreensResponse:
        return sc.ListScreensResponse(screens=[screen_to_pb(s) for s in self.results.screens.values()])

    async def GetResults(
        self, request: sc.GetResultsRequest, context: Context[sc.GetResultsRequest, sc.GetResultsResponse]
    ) -> sc.GetResultsResponse:
        name = self.results.screen(request.screen, "screen").name
        latest = self.results.latest.get(name)
        return sc.GetResultsResponse() if latest is None else sc.GetResultsResponse(result=latest)

    async def StreamResults(
        self,
        request: sc.StreamResultsRequest,
        context: Context[sc.StreamResultsRequest, sc.StreamResultsResponse],
    ) -> AsyncIterator[sc.StreamResultsResponse]:
        names = self.results.names(list(request.screens), "screens")
        # Watch before taking the latest, with no await between: no result falls between the two.
        watcher = self.results.watch(names)
        metrics.WATCHERS.set(len(self.results))
        try:
            for name in sorted(names):
                latest = self.results.latest.get(name)
                if latest is not None:
                    yield sc.StreamResultsResponse(result=latest)
            while (result := await watcher.queue.get()) is not None:
                yield sc.StreamResultsResponse(result=result)
            if watcher.overflowed:
                raise ResourceExhausted("screener: this stream fell behind its results; call again")
        finally:
            self.results.drop(watcher)
            metrics.WATCHERS.set(len(self.results))


def screener_service(results: Results) -> Service:
    return Service(SERVICE_NAME, ScreenerService(results), sc_grpc.add_ScreenerServicer_to_server)
