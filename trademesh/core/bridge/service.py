"""The LiveData gRPC service over a Bridge.

Subscribe yields SubscribeResponses already encoded by the fan-out (a byte join of framed
events), so the handler is registered with an identity serializer; errors are trademesh.core.platform.errors
types, mapped to statuses by trademesh.core.platform.rpc's edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from trademesh.core.bridge import validate
from trademesh.core.bridge.bridge import Bridge
from trademesh.core.bridge.fanout import LiveRoute
from trademesh.core.bridge.routes import BOOK, describe
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.edge import Registrar
from trademesh.core.platform.rpc.handlers import add_handlers, unary_handler, wire_stream_handler
from trademesh.core.platform.rpc.server import Service
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.livedata.v1 import livedata_pb2_grpc as lv_grpc

__all__ = ["live_data_service"]

SERVICE_NAME = lv.DESCRIPTOR.services_by_name["LiveData"].full_name


class LiveDataService(lv_grpc.LiveDataServicer):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def Subscribe(  # type: ignore[override]
        self, request: lv.SubscribeRequest, context: Context[lv.SubscribeRequest, bytes]
    ) -> AsyncIterator[bytes]:
        subscriber = self.bridge.subscribe(validate.subscribe_request(request))
        try:
            async for message in subscriber.messages():
                yield message
        finally:
            self.bridge.unsubscribe(subscriber)

    async def ListStreams(
        self, request: lv.ListStreamsRequest, context: Context[lv.ListStreamsRequest, lv.ListStreamsResponse]
    ) -> lv.ListStreamsResponse:
        venues, kinds = validate.list_streams_request(request)
        streams = self._streams(self.bridge.fanout.routes())
        wanted = [s for s in streams if (not venues or s.venue in venues) and (not kinds or s.kind in kinds)]
        return lv.ListStreamsResponse(streams=wanted, subscriber_count=len(self.bridge.fanout.subscribers))

    def _streams(self, routes: Iterable[LiveRoute]) -> list[lv.Stream]:
        """One Stream per (venue, kind, symbol, timeframe); notices of every channel count as one."""
        merged: dict[tuple[str, int, str, int], lv.Stream] = {}
        for route in routes:
            venue, kind, symbol = route.key
            api_kind, timeframe = describe(kind)
            stream = merged.get((venue, api_kind, symbol, timeframe))
            if stream is None:
                stream = merged[(venue, api_kind, symbol, timeframe)] = lv.Stream(
                    venue=venue, kind=api_kind, symbol=symbol, timeframe=timeframe
                )
            stream.events_total += route.events_total
            stream.last_event_ns = max(stream.last_event_ns, route.last_event_ns)
            if kind == BOOK:
                stream.book_sequence = self.bridge.books.sequence(venue, symbol)
        return [merged[key] for key in sorted(merged)]


def _add_live_data(servicer: LiveDataService, server: Registrar) -> None:
    """Like the generated add function, but Subscribe's messages are already wire bytes."""
    handlers = {
        "Subscribe": wire_stream_handler(servicer.Subscribe, lv.SubscribeRequest),
        "ListStreams": unary_handler(servicer.ListStreams, lv.ListStreamsRequest, lv.ListStreamsResponse),
    }
    add_handlers(server, SERVICE_NAME, handlers)


def live_data_service(bridge: Bridge) -> Service:
    return Service(SERVICE_NAME, LiveDataService(bridge), _add_live_data)
