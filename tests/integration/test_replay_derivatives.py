"""The derivatives channels of live venues against their sessions (issue 60): a gRPC subscriber
gets Deribit's mark prices, index prices and open interest as its ticker stream states them, every
one, and the venue refuses the liquidations channel it has not; OKX swaps' from their mark-price,
open-interest and liquidation-orders channels, its tickers untouched. Expected values are read
from the captures' own text here."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import grpc
import pytest

from tests.integration.replay import capture_files, collect, instruments, replay_venue_fixture
from tests.integration.support import CALL_TIMEOUT_S, Venue
from tests.integration.test_replay_deribit import EXPECTED, SYMBOLS
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
FILES = capture_files("DERIBIT")
replay_venue = replay_venue_fixture("deribit", FILES)


def _expected() -> tuple[dict[str, list[tuple[int, D, D]]], dict[str, list[tuple[int, D]]]]:
    """Per instrument, (ms, mark, index) and (ms, open interest) of each ticker notification."""
    marks: dict[str, list[tuple[int, D, D]]] = {}
    interest: dict[str, list[tuple[int, D]]] = {}
    for channel, data in EXPECTED.notifications(FILES):
        if channel.startswith("ticker."):
            name = data["instrument_name"]
            marks.setdefault(name, []).append(
                (data["timestamp"], D(data["mark_price"]), D(data["index_price"]))
            )
            interest.setdefault(name, []).append((data["timestamp"], D(data["open_interest"])))
    return marks, interest


@pytest.mark.replay(config='channels = ["tickers", "mark", "open_interest"]\n')
async def test_deribits_marks_and_open_interest_come_from_its_ticker_stream(replay_venue: Venue) -> None:
    marks, interest = _expected()
    stubs = replay_venue.stubs()
    try:
        symbols = await instruments(stubs)
        assert symbols == SYMBOLS
        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        polled = [s for s in status.streams if s.channel == md.CHANNEL_OPEN_INTEREST and s.poll_interval_ms]
        assert not polled, "streamed: Deribit's ticker states it"
        channels = [md.CHANNEL_MARK, md.CHANNEL_OPEN_INTEREST, md.CHANNEL_LIQUIDATIONS]
        collected = await collect(
            stubs, list(symbols.values()), channels, quiet_s=5.0, played=replay_venue.log_path
        )
    finally:
        await stubs.close()
    refused = {
        e.symbol
        for e in collected.notices(md.NOTICE_KIND_REFUSED)
        if e.notice.channel == md.CHANNEL_LIQUIDATIONS
    }
    assert refused == set(symbols.values()), "no liquidation stream at Deribit: each told so"
    assert "no liquidations channel" in collected.notices(md.NOTICE_KIND_REFUSED)[0].notice.reason
    for native, symbol in symbols.items():
        got_marks = [
            (e.ts_event_ns // 10**6, D(e.mark_price.mark_price), D(e.mark_price.index_price))
            for e in collected.of(symbol, "mark_price")
        ]
        assert got_marks == marks[native], f"{symbol}: every mark as its ticker stated it"
        got_interest = [
            (e.ts_event_ns // 10**6, D(e.open_interest.size)) for e in collected.of(symbol, "open_interest")
        ]
        assert got_interest == interest[native]
        assert all(e.open_interest.value == "" for e in collected.of(symbol, "open_interest")), (
            "options: no USD"
        )
    assert sum(len(v) for v in marks.values()) == 89


async def test_admin_refuses_a_channel_the_venue_has_not(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    try:
        symbol = next(iter((await instruments(stubs)).values()))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stubs.admin.AddSubscriptions(
                admin.AddSubscriptionsRequest(
                    subscriptions=[admin.Subscription(symbol=symbol, channel=md.CHANNEL_LIQUIDATIONS)]
                ),
                timeout=CALL_TIMEOUT_S,
            )
    finally:
        await stubs.close()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no liquidations channel" in str(refused.value.details())


OKX_FILES = capture_files("OKX_SWAP") + capture_files("OKX_SWAP_DERIVATIVES")
okx_venue = replay_venue_fixture("okx-swap", OKX_FILES)
OKX_SYMBOL = "BTC/USDT:USDT"


def _okx_pushes(channel: str) -> list[dict[str, Any]]:
    """The data objects of the OKX sessions' pushes on `channel`, in order."""
    found = []
    for path in OKX_FILES:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if head.replace(".", "").isdigit() and text.startswith(f'{{"arg":{{"channel":"{channel}"'):
                found += json.loads(text)["data"]
    return found


@pytest.mark.replay(config='channels = ["tickers", "mark", "open_interest", "liquidations"]\n')
async def test_okx_swaps_marks_open_interest_and_liquidations_come_from_their_channels(
    okx_venue: Venue,
) -> None:
    stubs = okx_venue.stubs()
    try:
        channels = [md.CHANNEL_TICKERS, md.CHANNEL_MARK, md.CHANNEL_OPEN_INTEREST, md.CHANNEL_LIQUIDATIONS]
        collected = await collect(stubs, [OKX_SYMBOL], channels, quiet_s=5.0, played=okx_venue.log_path)
    finally:
        await stubs.close()
    marks = [(int(d["ts"]), D(d["markPx"])) for d in _okx_pushes("mark-price")]
    got = [
        (e.ts_event_ns // 10**6, D(e.mark_price.mark_price)) for e in collected.of(OKX_SYMBOL, "mark_price")
    ]
    assert got == marks and len(marks) >= 15, "every mark-price push, as OKX states it"
    assert all(e.mark_price.index_price == "" for e in collected.of(OKX_SYMBOL, "mark_price")), (
        "OKX states it apart"
    )
    interest = [(int(d["ts"]), D(d["oi"])) for d in _okx_pushes("open-interest")]
    got_interest = [
        (e.ts_event_ns // 10**6, D(e.open_interest.size)) for e in collected.of(OKX_SYMBOL, "open_interest")
    ]
    assert got_interest == interest and interest, "contracts, every push"
    details = [
        (int(x["ts"]), common.SIDE_SELL if x["side"] == "sell" else common.SIDE_BUY, D(x["bkPx"]), D(x["sz"]))
        for d in _okx_pushes("liquidation-orders")
        for x in d["details"]
    ]
    got_liquidations = [
        (e.ts_event_ns // 10**6, e.liquidation.side, D(e.liquidation.price), D(e.liquidation.size))
        for e in collected.of(OKX_SYMBOL, "liquidation")
    ]
    assert got_liquidations == details and len(details) > len(_okx_pushes("liquidation-orders")), (
        "each detail"
    )
    tickers = collected.of(OKX_SYMBOL, "ticker")
    assert tickers and all(e.ticker.best_bid and e.ticker.best_ask for e in tickers), (
        "no mark went out as a ticker"
    )
    assert not collected.notices(md.NOTICE_KIND_REFUSED)
