"""The kit's trades.history and tickers.all against a fake venue over real gRPC (the fake venue of
test_venue_check_answers, with trade history and tickers): each passes where the rule is kept, and
fails naming the problem where one rule is broken; each is skipped where the capabilities say so."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from tests.unit.test_venue_check_answers import (
    SYMBOL,
    BearerAuth,
    FakeAdmin,
    FakeMarketData,
    FakeTradeFlow,
    Faults,
    _abort_invalid,
    _served,
    check_result,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Side
from trademesh.core.venue_check.results import CheckOutcome
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.trades import (
    PublicTrade,
    TradesCursor,
    TradesRead,
    decode_token,
    encode_token,
    trades_page,
)

S = 1_000_000_000


@dataclass(frozen=True)
class Breaks:
    """The one rule the fake venue's history breaks (none: it keeps them)."""

    repeat: bool = False  # each page after the first repeats the previous page's last trade
    takes_any_limit: bool = False  # a limit over 1000 is taken, not refused
    unordered_tickers: bool = False  # tickers in another order than ListInstruments'
    capable: bool = True  # the capabilities say it serves both


class HistoryAdmin(FakeAdmin):
    def __init__(self, breaks: Breaks) -> None:
        self.breaks = breaks

    async def GetStatus(self, request: admin.GetStatusRequest, context: Any) -> admin.GetStatusResponse:
        status = await super().GetStatus(request, context)
        status.capabilities.trade_history = status.capabilities.all_tickers = self.breaks.capable
        return status


class HistoryMarketData(FakeMarketData):
    def __init__(self, breaks: Breaks) -> None:
        super().__init__(Faults())
        self.breaks = breaks
        start = time.time_ns() - 300 * S
        # 20 trades, pairs of them sharing a timestamp.
        self.tape = [
            PublicTrade(start + (i // 2) * S, str(i + 1), "100.5", "0.25", Side.SELL if i % 3 else Side.BUY)
            for i in range(20)
        ]

    async def GetTrades(self, request: md.GetTradesRequest, context: Any) -> md.GetTradesResponse:
        bad = []
        if request.symbol != SYMBOL:
            bad.append(("symbol", "unknown symbol"))
        if request.limit > 1000 and not self.breaks.takes_any_limit:
            bad.append(("limit", "at most 1000"))
        cursor: TradesCursor | None = None
        if request.page_token:
            try:
                cursor = decode_token(request.page_token)
            except ValueError:
                bad.append(("page_token", "not one of ours"))
        else:
            end_ns = request.end_ns or time.time_ns()
            if end_ns <= request.start_ns:
                bad.append(("end_ns", "must be after start_ns"))
            cursor = TradesCursor(request.symbol, end_ns, request.start_ns)
        if bad:
            await _abort_invalid(context, bad)
        assert cursor is not None
        limit = min(request.limit or 1000, 1000)
        found = [t for t in self.tape if t.ts_event_ns >= cursor.since_ns]
        page, following = trades_page(cursor, TradesRead(found, complete=True), limit, "fake")
        if self.breaks.repeat and request.page_token and page:
            page = [*self._before(page[0]), *page][:limit]
        return md.GetTradesResponse(
            trades=[
                md.HistoricalTrade(
                    ts_event_ns=t.ts_event_ns,
                    trade=md.Trade(
                        trade_id=t.trade_id, price=t.price, size=t.size, taker_side=common.SIDE_SELL
                    ),
                )
                for t in page
            ],
            next_page_token="" if following is None else encode_token(following),
        )

    def _before(self, trade: PublicTrade) -> list[PublicTrade]:
        index = self.tape.index(trade)
        return self.tape[index - 1 : index] if index else []

    async def GetTickers(self, request: md.GetTickersRequest, context: Any) -> md.GetTickersResponse:
        unknown = [(f"symbols[{i}]", "unknown symbol") for i, s in enumerate(request.symbols) if s != SYMBOL]
        if unknown:
            await _abort_invalid(context, unknown)
        ticker = md.Ticker(
            best_bid="100", best_bid_size="1", best_ask="101", best_ask_size="2", last_price="100.5"
        )
        answer = [md.SymbolTicker(symbol=SYMBOL, ts_event_ns=time.time_ns(), ticker=ticker)]
        if self.breaks.unordered_tickers and not request.symbols:
            answer = answer * 2
        return md.GetTickersResponse(tickers=answer)


@contextlib.asynccontextmanager
async def history_venue(breaks: Breaks = Breaks()) -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[BearerAuth(Faults())])
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_generic_rpc_handlers(
        (
            _served(admin.DESCRIPTOR.services_by_name["Admin"], HistoryAdmin(breaks)),
            _served(md.DESCRIPTOR.services_by_name["MarketData"], HistoryMarketData(breaks)),
            _served(tf.DESCRIPTOR.services_by_name["TradeFlow"], FakeTradeFlow(Faults())),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_venue_that_pages_right_passes_trades_history() -> None:
    async with history_venue() as address:
        result = await check_result(address, "trades.history")
    assert result.outcome is CheckOutcome.PASS, result.reason
    assert "20 trades" in result.reason and "the last ten minutes" in result.reason


async def test_a_page_repeating_a_trade_fails_trades_history() -> None:
    async with history_venue(Breaks(repeat=True)) as address:
        result = await check_result(address, "trades.history")
    assert result.outcome is CheckOutcome.FAIL
    assert "repeated or skipped" in result.reason, result.reason


async def test_a_limit_over_1000_taken_fails_trades_history() -> None:
    async with history_venue(Breaks(takes_any_limit=True)) as address:
        result = await check_result(address, "trades.history")
    assert result.outcome is CheckOutcome.FAIL
    assert "limit of 1001" in result.reason, result.reason


async def test_tickers_all_passes_and_fails_on_a_ticker_twice() -> None:
    async with history_venue() as address:
        result = await check_result(address, "tickers.all")
    assert result.outcome is CheckOutcome.PASS, result.reason
    async with history_venue(Breaks(unordered_tickers=True)) as address:
        result = await check_result(address, "tickers.all")
    assert result.outcome is CheckOutcome.FAIL
    assert "each once" in result.reason, result.reason


async def test_both_are_skipped_when_the_capabilities_say_so() -> None:
    async with history_venue(Breaks(capable=False)) as address:
        for name in ("trades.history", "tickers.all"):
            result = await check_result(address, name)
            assert result.outcome is CheckOutcome.SKIP and result.reason.startswith("GetStatus"), (
                result.reason
            )
