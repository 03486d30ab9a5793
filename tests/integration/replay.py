"""Helpers of the replay tests: live venue processes fed by recorded sessions, and event collection.

A replay venue is `trademesh venue <name> --replay <capture files>` run exactly as an
operator would; its ccxt.pro client talks to the in-process stand-in in the exchange's
own wire formats. Tests compare what comes out over gRPC with the capture itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

import grpc

from core.env import TOKEN
from core.process import start_service
from tests.integration.support import TEST_TOKEN, Stubs, Venue
from trademesh.marketdata.v1 import marketdata_pb2 as md

ROOT = Path(__file__).resolve().parents[2]
SHARED_CAPTURES = ROOT.parent / "shared" / "fixtures" / "exchange-captures"
OWN_CAPTURES = ROOT / "fixtures" / "exchange-captures"
ALL_CHANNELS = [md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_CANDLES, md.CHANNEL_TICKERS]


def capture_files(prefix: str) -> list[Path]:
    """The files of one recorded session (e.g. "BINANCE"), from the shared fixtures or ours."""
    for folder in (SHARED_CAPTURES, OWN_CAPTURES):
        files = sorted(p for p in folder.glob(f"{prefix}.*") if p.name.split(".")[-1].isdigit())
        if files:
            return files
    raise FileNotFoundError(f"no capture {prefix}.* in {SHARED_CAPTURES} or {OWN_CAPTURES}")


def start_replay_venue(
    directory: Path,
    name: str,
    files: Sequence[Path],
    faults: Sequence[str] = (),
    env: dict[str, str] | None = None,
    config: str | None = None,
    paced: bool = False,
) -> tuple[Venue, IO[str]]:
    args = ["venue", name, "--port", "0", "--metrics-port", "0", "--replay", *map(str, files)]
    if paced:
        args.append("--replay-paced")
    for fault in faults:
        args += ["--replay-fault", fault]
    if config is not None:
        path = directory / f"{name}.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    log_path = directory / f"{name}-replay.log"
    log_file = log_path.open("w")
    service = start_service(args, env={TOKEN: TEST_TOKEN, **(env or {})}, stderr=log_file, timeout_s=30)
    return Venue(service, log_path), log_file


@dataclass
class Collected:
    """Everything one subscriber received, by symbol and kind, in arrival order."""

    events: list[md.MarketEvent] = field(default_factory=list)

    def of(self, symbol: str, kind: str) -> list[md.MarketEvent]:
        return [e for e in self.events if e.symbol == symbol and e.WhichOneof("payload") == kind]

    def counts(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter((e.symbol, str(e.WhichOneof("payload"))) for e in self.events)

    def notices(self, kind: int | None = None) -> list[md.MarketEvent]:
        return [e for e in self.events if e.HasField("notice") and kind in (None, e.notice.kind)]

    def book(self, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The book after the last snapshot and every delta after it (sequence checked)."""
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        sequence = None
        for event in self.events:
            if event.symbol != symbol:
                continue
            if event.HasField("book_snapshot"):
                bids, asks = {}, {}
                _apply(bids, event.book_snapshot.bids)
                _apply(asks, event.book_snapshot.asks)
                sequence = event.book_snapshot.sequence
            elif event.HasField("book_delta"):
                assert sequence is not None and event.book_delta.sequence == sequence + 1, "sequence gap"
                _apply(bids, event.book_delta.bids)
                _apply(asks, event.book_delta.asks)
                sequence = event.book_delta.sequence
        return bids, asks


def _apply(side: dict[Decimal, Decimal], levels: Sequence[md.BookLevel]) -> None:
    for level in levels:
        price, size = Decimal(level.price), Decimal(level.size)
        if size == 0:
            side.pop(price, None)
        else:
            side[price] = size


async def instruments(stubs: Stubs) -> dict[str, str]:
    """native symbol -> canonical symbol, as the venue lists them."""
    answer = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=10)
    return {i.native_symbol: i.symbol for i in answer.instruments}


async def collect(
    stubs: Stubs,
    symbols: Sequence[str],
    channels: Sequence[md.Channel.ValueType] = ALL_CHANNELS,
    quiet_s: float = 2.0,
    timeout_s: float = 90.0,
) -> Collected:
    """Subscribe (which starts the replay) and read until the stream has been quiet for quiet_s.

    A reader task drains the stream as fast as it comes; a stream that ends in an error
    (e.g. RESOURCE_EXHAUSTED for a subscriber that fell behind) fails the test.
    """
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=symbols, channels=channels))
    collected = Collected()
    loop = asyncio.get_running_loop()
    last_read = loop.time()

    async def read() -> None:
        nonlocal last_read
        async for message in call:
            collected.events.extend(message.events)
            last_read = loop.time()

    reader = asyncio.create_task(read())
    deadline = loop.time() + timeout_s
    while not reader.done() and loop.time() < deadline and loop.time() - last_read < quiet_s:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if reader.done():
        reader.result()  # raises what ended the stream
    call.cancel()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await reader
    return collected
