"""Helpers of the paper venues' tests (test_paper_venue.py, test_paper_strategy_chain.py): the
recorded market as a subscriber of the paper venue hears it, and the two views of the account
the tests compare (the ledger's books, the venue's balances)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from decimal import Decimal

import grpc

from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Stubs
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["AUTH", "Market", "ledger_cash", "ledger_position", "venue_totals"]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
D = Decimal


class Market:
    """The venue's book and trades as its subscribers get them (the recorded market): every
    price each side of the book showed, and the best bid and ask now."""

    def __init__(self, stubs: Stubs, symbol: str) -> None:
        request = md.SubscribeRequest(symbols=[symbol], channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES])
        self.call = stubs.md.Subscribe(request)
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.asks_shown: set[Decimal] = set()
        self.bids_shown: set[Decimal] = set()
        # (ts_recv_ns, price, size, taker side) of every trade; (ts_recv_ns, best bid, best ask)
        # after every book event: what the venue had heard, when.
        self.trades: list[tuple[int, Decimal, Decimal, int]] = []
        self.tops: list[tuple[int, Decimal | None, Decimal | None]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.call:
            for event in message.events:
                kind = event.WhichOneof("payload")
                if kind == "trade":
                    trade = event.trade
                    self.trades.append((event.ts_recv_ns, D(trade.price), D(trade.size), trade.taker_side))
                elif kind in ("book_snapshot", "book_delta"):
                    book = event.book_snapshot if kind == "book_snapshot" else event.book_delta
                    if kind == "book_snapshot":
                        self.bids.clear()
                        self.asks.clear()
                    self._apply(self.bids, self.bids_shown, book.bids)
                    self._apply(self.asks, self.asks_shown, book.asks)
                    best_bid = max(self.bids) if self.bids else None
                    self.tops.append((event.ts_recv_ns, best_bid, min(self.asks) if self.asks else None))

    @staticmethod
    def _apply(side: dict[Decimal, Decimal], shown: set[Decimal], levels: Iterable[md.BookLevel]) -> None:
        for level in levels:
            price, size = D(level.price), D(level.size)
            if size == 0:
                side.pop(price, None)
            else:
                side[price] = size
                shown.add(price)

    async def quoted(self) -> tuple[Decimal, Decimal] | None:
        if self._task.done():
            self._task.result()  # raises what ended the stream
        return (max(self.bids), min(self.asks)) if self.bids and self.asks else None

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task


async def ledger_cash(ledger: ServiceProcess, venue: str) -> dict[str, Decimal]:
    """The ledger's `venue_cash` of each asset at `venue` (docs/ledger.md, the cash ledger)."""
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        answer = await lg_grpc.LedgerStub(channel).GetBalances(
            lg.GetBalancesRequest(venue=venue, ledger=lg.LEDGER_KIND_CASH),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    return {b.account.asset: D(b.balance) for b in answer.balances if b.account.code_name == "venue_cash"}


async def ledger_position(ledger: ServiceProcess, venue: str, symbol: str) -> tuple[Decimal, Decimal]:
    """The ledger's spot quantity and cost basis of `symbol` at `venue`, summed over the
    strategies (docs/ledger.md, the position ledger)."""
    async with grpc.aio.insecure_channel(ledger.address) as channel:
        answer = await lg_grpc.LedgerStub(channel).GetBalances(
            lg.GetBalancesRequest(venue=venue, ledger=lg.LEDGER_KIND_POSITION),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    found = [b for b in answer.balances if b.account.symbol == symbol]
    quantity = sum((D(b.balance) for b in found if b.account.code_name == "spot_quantity"), D(0))
    return quantity, sum((D(b.balance) for b in found if b.account.code_name == "position_cost"), D(0))


async def venue_totals(stubs: Stubs) -> dict[str, Decimal]:
    """The venue's balances: the total of each asset."""
    answer = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    return {b.asset: D(b.total) for b in answer.balances}
