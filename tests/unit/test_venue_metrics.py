"""A venue's stream metrics: states as Admin shows them, and reconnects, resyncs, checksum
mismatches, dead-man trips and fills counted per channel from the streams' totals, with their
series at 0 before the first (so a rule's increase() sees the first one)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from trademesh.core.domain.model import Channel, StreamKey
from trademesh.venues.runtime.metrics import VenueMetrics
from trademesh.venues.runtime.stats import StreamState, StreamStats


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _stream(symbol: str, channel: Channel, state: StreamState = StreamState.CONNECTED) -> StreamStats:
    return StreamStats(StreamKey(symbol, channel), state=state)


def test_streams_are_counted_per_channel_by_the_state_admin_shows() -> None:
    metrics = VenueMetrics("metrics-states")
    stale, failed, fine = _stream("A", Channel.BOOK), _stream("B", Channel.BOOK), _stream("A", Channel.TRADES)
    stale.stale, failed.state = True, StreamState.FAILED
    metrics.update_streams([stale, failed, fine, _stream("C", Channel.BOOK, StreamState.DISCONNECTED)])
    book = {s: _value("trademesh_venue_streams", venue="metrics-states", channel="book", state=s)
            for s in ("stale", "failed", "disconnected", "connected")}  # fmt: skip
    assert book == {"stale": 1.0, "failed": 1.0, "disconnected": 1.0, "connected": 0.0}
    trades = _value("trademesh_venue_streams", venue="metrics-states", channel="trades", state="connected")
    assert trades == 1.0
    stale.stale = False
    metrics.update_streams([stale, failed, fine])
    assert _value("trademesh_venue_streams", venue="metrics-states", channel="book", state="stale") == 0.0
    assert _value("trademesh_venue_streams", venue="metrics-states", channel="book", state="connected") == 1.0


def test_reconnects_resyncs_and_checksum_mismatches_are_counted_from_the_streams_totals() -> None:
    metrics = VenueMetrics("metrics-counts")
    a, b = _stream("A", Channel.BOOK), _stream("B", Channel.BOOK)
    metrics.update_streams([a, b])
    names = ("reconnects", "resyncs", "checksum_mismatches")
    assert all(_value(f"trademesh_venue_stream_{n}_total", venue="metrics-counts", channel="book") == 0.0
               for n in names)  # fmt: skip
    a.reconnects, a.resyncs, a.checksum_mismatches, b.reconnects = 2, 1, 1, 1
    metrics.update_streams([a, b])
    a.reconnects, b.checksum_mismatches = 3, 2
    metrics.update_streams([a, b])
    counted = [
        _value(f"trademesh_venue_stream_{n}_total", venue="metrics-counts", channel="book") for n in names
    ]
    assert counted == [4.0, 1.0, 3.0]


def test_dead_man_trips_and_fills_are_counted() -> None:
    metrics = VenueMetrics("metrics-trips")
    assert _value("trademesh_venue_dead_man_trips_total", venue="metrics-trips") == 0.0
    assert _value("trademesh_venue_fills_total", venue="metrics-trips") == 0.0
    metrics.update_dead_man(1)
    metrics.update_dead_man(1)
    metrics.update_dead_man(3)
    metrics.fill("BTC/USDT:USDT", liquidation=False)
    metrics.fill("BTC/USDT:USDT", liquidation=True)
    assert _value("trademesh_venue_dead_man_trips_total", venue="metrics-trips") == 3.0
    assert _value("trademesh_venue_fills_total", venue="metrics-trips") == 2.0
    liquidations = _value(
        "trademesh_venue_liquidation_fills_total", venue="metrics-trips", symbol="BTC/USDT:USDT"
    )
    assert liquidations == 1.0
