"""The inspector's market board (trademesh.core.inspector.market) following a real sim venue process: a
market the venue does not list is dropped, said once, and the venue's other markets are
followed on the same stream, whether the board learns it from the venue's instruments or from
the venue's REFUSED notice; a subscription the venue refuses whole is not sent again unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest

from tests.integration.support import TEST_TOKEN, Venue, metric_samples, scrape, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.instruments import VenueInstruments
from trademesh.core.inspector.market import MarketBoard
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.errors import Unavailable
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver

pytestmark = pytest.mark.integration

BTC, DOGE = ("sim", "BTC/USDT"), ("sim", "DOGE/USDT")
STARTED = (
    '{grpc_method="Subscribe",grpc_service="trademesh.marketdata.v1.MarketData",grpc_type="server_stream"}'
)
# A follower that resent a refused subscription would have sent several in this window (its
# backoff starts at 0.2 s); one that does not sent none.
WINDOW_S = 2.0


async def _unreadable(venue: str) -> Sequence[common.Instrument]:
    raise Unavailable("the instruments are not read in this test: the venue's notices tell")


@dataclass
class Board:
    board: MarketBoard
    links: VenueLinks
    stop: asyncio.Event


@asynccontextmanager
async def _board(venue: Venue, read_instruments: bool) -> AsyncIterator[Board]:
    links = VenueLinks(MeshResolver(None, [Instance("sim", venue.address, VENUE_SERVICES)]))
    instruments = None if read_instruments else VenueInstruments(_unreadable)

    async def on_trade(venue: str, symbol: str, price: Decimal) -> None:
        return None

    board = MarketBoard(links, on_trade, instruments=instruments)
    stop = asyncio.Event()
    board.start(stop)
    try:
        yield Board(board, links, stop)
    finally:
        stop.set()
        await board.close()
        await links.close()


@pytest.fixture(params=[True, False], ids=["instruments", "notices"])
async def following(
    request: pytest.FixtureRequest, venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Board]:
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    async with _board(venue, request.param) as board:
        yield board


async def _quoted(board: MarketBoard) -> bool | None:
    quote = board.quotes.get(BTC)
    return True if quote is not None and quote.bid is not None and quote.ask is not None else None


async def test_a_market_the_venue_does_not_list_is_dropped_and_the_others_are_followed(
    following: Board, caplog: pytest.LogCaptureFixture
) -> None:
    board = following.board
    board.keep(frozenset({BTC, DOGE}))  # as an active patch on an unlisted symbol would
    await until(lambda: _quoted(board), 10, 0.05, "BTC/USDT quoted")

    async def dropped() -> bool | None:
        return True if board.following() == [BTC] else None

    await until(dropped, 10, 0.05, "DOGE/USDT dropped")
    board.prune()  # a kept market the venue refused is not followed again
    assert board.following() == [BTC]
    said = [r.getMessage() for r in caplog.records if "DOGE/USDT not followed" in r.getMessage()]
    assert len(said) == 1 and "unknown symbol 'DOGE/USDT'" in said[0], said


async def test_a_subscription_refused_whole_is_not_sent_again_unchanged(
    venue: Venue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    async with _board(venue, read_instruments=False) as following:
        before = metric_samples(await scrape(venue), "grpc_server_started_total").get(STARTED, 0.0)
        following.board.follow(*DOGE)

        async def refused() -> bool | None:
            said = any("INVALID_ARGUMENT" in r.getMessage() for r in caplog.records)
            return True if said else None

        await until(refused, 10, 0.05, "the subscription refused")
        await asyncio.sleep(WINDOW_S)  # the window in which a retry loop would resend it
        after = metric_samples(await scrape(venue), "grpc_server_started_total").get(STARTED, 0.0)
        assert after - before == 1, f"{after - before} subscriptions sent"
        following.board.unfollow(*DOGE)
        following.board.follow(*BTC)  # a change: asked again, and served
        await until(lambda: _quoted(following.board), 10, 0.05, "BTC/USDT quoted")
