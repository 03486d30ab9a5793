"""A sim venue that replays pre-encoded market data: issue 17's load for the durable path at
100,000 events/s, without the synthetic market's own cost on the same two cores.

    record: run the sim's market offline (SimVenue's own market, publisher and MarketFeed, in
            simulated time) for --events events and keep every dispatch the feed makes, as the
            encoded SubscribeResponse chunks of each stream (pickle, to --out).
    serve:  a venue process (the real venue runtime: MarketData, TradeFlow, Admin over gRPC)
            whose market is that recording, handed to the runtime's fan-out at --rate events/s
            (the due dispatches of each millisecond joined per stream: a byte join of encoded
            SubscribeResponses is one). It waits for --subscribers MarketData streams before
            it plays, so every consumer sees the books from their first change, as from a sim.

The events are the sim's, times included: they are the simulated times of the recording, not
the time they are served (so a receive -> commit latency taken from them means nothing; measure
latency on the sim). Admin/GetStatus counts each stream's events as they are served.

    .venv/bin/python bench/encoded_venue.py record --config sim.toml --events 2000000 --out rec.pickle
    .venv/bin/python bench/encoded_venue.py serve --recording rec.pickle --rate 100000 \\
        venue sim --port 0 --metrics-port -1 --config sim.toml
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trademesh.core.domain.model import StreamKey
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import MarketFanout, MarketRoute
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamState, StreamTable
from trademesh.venues.runtime.venue import VenueContext
from trademesh.venues.sim.config import SimConfig, load_config
from trademesh.venues.sim.symbols import VENUE
from trademesh.venues.sim.venue import SimVenue

log = logging.getLogger("encoded_venue")

# One dispatch: each stream's encoded SubscribeResponse and its number of events.
Dispatch = list[tuple[MarketRoute, int, bytes]]
_TICK_S = 0.001  # how often due dispatches are handed to the fan-out


class _Keeper(MarketFanout):
    """Keeps what the feed dispatches, with each stream's number of events."""

    def __init__(self) -> None:
        super().__init__(1, lambda symbol, channel: b"")
        self.kept: list[Dispatch] = []
        self.events = 0

    def dispatch(self, pending: dict[MarketRoute, bytes]) -> None:
        dispatch: Dispatch = []
        for route, chunk in pending.items():
            count = len(md.SubscribeResponse.FromString(chunk).events)
            dispatch.append((route, count, chunk))
            self.events += count
        self.kept.append(dispatch)


def record(config: SimConfig, events: int) -> list[Dispatch]:
    """The dispatches of the sim's market until it has made `events` events, in simulated time."""
    venue = SimVenue(config)
    streams = StreamTable()
    step_ns = config.tick_interval_ms * 1_000_000
    now_ns = time.time_ns()
    venue._clock.simulated_ns = now_ns
    feed = MarketFeed(VENUE, streams, clock=lambda: venue._clock())
    feed.attach(keeper := _Keeper())
    venue.publisher.attach(VenueContext(feed, on_execution=lambda execution: None), venue.default_streams())
    venue.market.prime()
    feed.flush()
    next_ticker = next_candles = now_ns
    while keeper.events < events:
        now_ns += step_ns
        venue._clock.simulated_ns = now_ns
        venue.market.step()
        if now_ns >= next_ticker:
            venue.publisher.publish_tickers(now_ns)
            next_ticker = now_ns + config.ticker_interval_ms * 1_000_000
        if now_ns >= next_candles:
            venue.publisher.publish_candles(now_ns)
            next_candles = now_ns + config.candle_interval_ms * 1_000_000
        feed.flush()
    return keeper.kept


class EncodedVenue(SimVenue):
    """The sim's instruments and services; its market data is the recording, served at a rate."""

    def __init__(self, config: SimConfig, recording: list[Dispatch], rate: float, subscribers: int) -> None:
        super().__init__(config)
        self.recording = recording
        self.rate = rate
        self.subscribers = subscribers

    async def start(self, context: VenueContext, streams: set[StreamKey]) -> None:
        self._context = context
        self._mark(streams, StreamState.CONNECTED)
        self._task = asyncio.create_task(self._play(context.feed), name="encoded-market")

    async def _play(self, feed: MarketFeed) -> None:
        fanout = feed.fanout
        assert fanout is not None
        while len(fanout.subscribers) < self.subscribers:  # noqa: ASYNC110 (the runtime has no event for it)
            await asyncio.sleep(0.05)
        log.info("playing %d dispatches at %.0f events/s", len(self.recording), self.rate)
        started, played, index = time.monotonic(), 0, 0
        while index < len(self.recording):
            due = (time.monotonic() - started) * self.rate
            pending: dict[MarketRoute, list[bytes]] = {}
            while index < len(self.recording) and played < due:
                for route, count, chunk in self.recording[index]:
                    pending.setdefault(route, []).append(chunk)
                    feed.stats(route[0], route[1]).events_total += count
                    played += count
                index += 1
            if pending:
                fanout.dispatch({route: b"".join(chunks) for route, chunks in pending.items()})
            await asyncio.sleep(_TICK_S)
        log.info("the recording has played out: %d events", played)


def _serve(args: argparse.Namespace, venue_argv: Sequence[str]) -> None:
    import uvloop

    from trademesh.core.cli import build_parser
    from trademesh.core.platform.logs.setup import setup_logging
    from trademesh.core.platform.service.command import server_options
    from trademesh.core.platform.service.lifecycle import label_of, run_service
    from trademesh.core.platform.service.registry import SERVICES
    from trademesh.venues.command import COMMAND
    from trademesh.venues.runtime.app import VenueApp

    venue_args = build_parser().parse_args(list(venue_argv))
    with args.recording.open("rb") as file:
        recording = pickle.load(file)
    entry = SERVICES["venue"]
    venue = EncodedVenue(load_config(venue_args.config), recording, args.rate, args.subscribers)
    app = VenueApp(venue)
    label = label_of(entry, app)
    setup_logging(label)
    uvloop.run(run_service(entry, app, server_options(entry, COMMAND, venue_args, label)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="record the sim's dispatches")
    rec.add_argument("--config", type=Path, required=True, help="the sim's config (TOML)")
    rec.add_argument("--events", type=int, required=True, help="events to record")
    rec.add_argument("--out", type=Path, required=True, help="the recording (pickle)")
    serve = commands.add_parser("serve", help="serve a recording as a venue; the rest: trademesh venue args")
    serve.add_argument("--recording", type=Path, required=True)
    serve.add_argument("--rate", type=float, required=True, help="events/s")
    serve.add_argument("--subscribers", type=int, default=1, help="MarketData streams to wait for")
    args, rest = parser.parse_known_args(argv)
    if args.command == "record":
        started = time.monotonic()
        dispatches = record(load_config(args.config), args.events)
        with args.out.open("wb") as file:
            pickle.dump(dispatches, file, protocol=pickle.HIGHEST_PROTOCOL)
        events = sum(count for dispatch in dispatches for _, count, _ in dispatch)
        seconds = time.monotonic() - started
        print(f"recorded {events:,} events in {len(dispatches):,} dispatches, {seconds:.1f} s")
    else:
        _serve(args, rest)


if __name__ == "__main__":
    main()
