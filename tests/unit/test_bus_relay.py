"""The market relay without a network: what a venue's stream puts on the bus, whoever carries it
(ingest over gRPC, the venue in process): refusals kept off, gap markers where events may be
missing, and where to resume from."""

from __future__ import annotations

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.relay import MarketRelay
from trademesh.marketdata.v1 import marketdata_pb2 as md

EPOCH = 1_700_000_000_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


class Bus:
    def __init__(self) -> None:
        self.batches: list[bus.MarketEvents] = []

    async def publish(self, stream: str, raw: bytes) -> None:
        assert stream == "md.{sim}.trades"
        self.batches.append(bus.MarketEvents.FromString(raw))


def _trades(position: int, ts_ns: int, epoch: int = EPOCH) -> bytes:
    batch = md.SubscribeResponse(position=position, epoch=epoch)
    batch.events.add(venue="sim", symbol="BTC/USDT", ts_event_ns=ts_ns).trade.trade_id = str(position)
    return batch.SerializeToString()


def _notice(kind: md.NoticeKind.ValueType, symbol: str) -> bytes:
    batch = md.SubscribeResponse()
    batch.events.add(venue="sim", symbol=symbol).notice.kind = kind
    return batch.SerializeToString()


def _gaps(batch: bus.MarketEvents) -> list[tuple[str, int]]:
    return [(e.symbol, e.notice.since_ns) for e in batch.events if e.notice.kind == md.NOTICE_KIND_GAP]


async def test_a_refused_symbol_stays_off_the_bus_and_is_not_asked_for_again() -> None:
    published = Bus()
    relay = MarketRelay("sim", Channel.TRADES, list(SYMBOLS), published.publish)
    await relay.opened(_notice(md.NOTICE_KIND_REFUSED, "ETH/USDT") + _trades(1, 100))
    assert relay.symbols == ["BTC/USDT"]
    assert [e.WhichOneof("payload") for e in published.batches[0].events] == ["trade"]
    assert list(relay.request().symbols) == ["BTC/USDT"]


async def test_a_stream_resumed_seamlessly_needs_no_marker_and_one_that_was_not_gets_one() -> None:
    published = Bus()
    relay = MarketRelay("sim", Channel.TRADES, list(SYMBOLS), published.publish)
    await relay.opened(_trades(1, 100))
    await relay.take(_trades(2, 200))
    relay.lost()
    request = relay.request()
    assert (request.resume.epoch, request.resume.position) == (EPOCH, 2)
    assert request.overflow_policy == md.OVERFLOW_POLICY_DISCONNECT
    await relay.opened(_trades(3, 300))  # the venue sent what followed position 2
    assert not any(_gaps(b) for b in published.batches)
    relay.lost()
    # Another venue process: its first message opens with GAP notices.
    await relay.opened(_notice(md.NOTICE_KIND_GAP, "BTC/USDT") + _trades(1, 900, EPOCH + 1))
    marker = published.batches[3]
    assert _gaps(marker) == [("BTC/USDT", 300), ("ETH/USDT", 300)], "since the last event published"


async def test_a_bus_that_lost_entries_gets_a_marker_before_the_next_batch() -> None:
    published = Bus()
    relay = MarketRelay("sim", Channel.TRADES, list(SYMBOLS), published.publish)
    await relay.opened(_trades(1, 100))
    relay.mark_bus_loss(50)
    await relay.take(_trades(2, 200))
    assert _gaps(published.batches[1]) == [("BTC/USDT", 50), ("ETH/USDT", 50)]
    assert published.batches[2].position == 2
    assert relay.gaps == 1
