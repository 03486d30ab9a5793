"""The ledger's MCP tools (trademesh.core.tools.ledger) against a Ledger server in this process: what each
tool asks for, bad arguments refused before any call with every bad one named, and answers
rendered with decimal strings and ISO times."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.core.tools.ledger import LEDGER, LedgerTools, checked_time, thinned
from trademesh.core.tools.upstream import Upstream
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc

T0 = 1_795_000_000_000_000_000  # 2026-11-18T11:06:40Z
CASH = lg.Account(
    id="a" * 32,
    ledger=lg.LEDGER_KIND_CASH,
    code=1,
    code_name="venue_cash",
    venue="sim",
    asset="USDT",
    strategy_id="trend",
    symbol="BTC/USDT",
)
FEES = lg.Account(id="b" * 32, ledger=lg.LEDGER_KIND_FEES, code=30, code_name="fees_paid", asset="USDT")


class Books(lg_grpc.LedgerServicer):
    """Canned answers; every request kept, to see what the tools asked for."""

    def __init__(self) -> None:
        self.asked: list[Message] = []

    async def GetBalances(self, request: lg.GetBalancesRequest, context: Any) -> lg.GetBalancesResponse:
        self.asked.append(request)
        held = lg.Balance(account=CASH, debits_posted="10.5", credits_posted="0", balance="10.5")
        return lg.GetBalancesResponse(balances=[held])

    async def ListTransfers(self, request: lg.ListTransfersRequest, context: Any) -> lg.ListTransfersResponse:
        self.asked.append(request)
        paid = lg.Transfer(
            id="c" * 32,
            debit_account_id=FEES.id,
            credit_account_id=CASH.id,
            amount="0.064",
            ledger=lg.LEDGER_KIND_CASH,
            code=30,
            asset="USDT",
            ts_ns=T0,
            links=lg.Links(fill_id="f-1", order_id="o-1", strategy_id="trend"),
            debit_account=FEES,
            credit_account=CASH,
        )
        return lg.ListTransfersResponse(transfers=[paid], next_page_token="next")

    async def GetPnl(self, request: lg.GetPnlRequest, context: Any) -> lg.GetPnlResponse:
        self.asked.append(request)
        curve = [lg.EquityPoint(ts_ns=T0 + i * 1_000_000_000, pnl=str(i)) for i in range(100)]
        trend = lg.StrategyPnl(
            strategy_id="trend",
            realised="12.5",
            fees="-0.75",
            funding="0",
            unrealised="-1.25",
            total="10.5",
            asset="USDT",
            fills=4,
            curve=curve,
        )
        total = lg.StrategyPnl(realised="12.5", fees="-0.75", total="10.5", asset="USDT", curve=curve)
        marks = [lg.Mark(venue="sim", symbol="BTC/USDT", price="64000.5", ts_ns=T0)]
        return lg.GetPnlResponse(strategies=[trend], total=total, marks=marks)

    async def WatchTransfers(
        self, request: lg.WatchTransfersRequest, context: Any
    ) -> AsyncIterator[lg.WatchTransfersResponse]:
        answers: list[lg.WatchTransfersResponse] = []  # no tool watches: the stream ends at once
        for answer in answers:
            yield answer

    async def Verify(self, request: lg.VerifyRequest, context: Any) -> lg.VerifyResponse:
        self.asked.append(request)
        wrong = lg.Mismatch(account_id=CASH.id, field="debits_posted", stored="10.5", recomputed="10.4")
        return lg.VerifyResponse(ok=False, accounts=2, transfers=7, mismatches=[wrong], problems=["x"])

    async def Trace(self, request: lg.TraceRequest, context: Any) -> lg.TraceResponse:
        self.asked.append(request)
        if request.id == "nobody":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no signal, decision ... has the id 'nobody'")
        steps = [
            lg.TraceStep(kind="signal", id="s-1", ts_ns=T0, summary="long BTC/USDT 0.8"),
            lg.TraceStep(
                kind="fill",
                id="f-1",
                ts_ns=T0 + 5,
                summary="buy 0.01 BTC/USDT @ 64000.5",
                fields=[lg.Field(name="fill_price", value="64000.5")],
            ),
        ]
        return lg.TraceResponse(id=request.id, kind="fill", steps=steps)


class _At:
    """A Resolver with the one Ledger instance."""

    def __init__(self, address: str) -> None:
        self.address = address

    def resolve(self, service: str, target: str | None) -> str:
        assert service == LEDGER
        return self.address

    def names(self, service: str) -> list[str]:
        return ["ledger"]


@pytest.fixture
async def books() -> AsyncIterator[tuple[Books, LedgerTools]]:
    servicer = Books()
    server = grpc.aio.server()
    lg_grpc.add_LedgerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    upstream = Upstream(_At(f"127.0.0.1:{port}"), 5.0)
    try:
        yield servicer, LedgerTools(upstream)
    finally:
        await upstream.close()
        await server.stop(None)


def _fields(exc: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {v.field for v in exc.value.violations}


async def test_balances_asks_with_the_filters_and_renders_decimal_strings(books: Any) -> None:
    servicer, tools = books
    got = await tools.ledger_balances(venue="sim", asset="USDT", strategy="trend", ledger="cash")
    asked = servicer.asked[-1]
    assert (asked.venue, asked.asset, asked.strategy_id) == ("sim", "USDT", "trend")
    assert asked.ledger == lg.LEDGER_KIND_CASH and asked.nonzero
    [row] = got["balances"]
    assert row["balance"] == "10.5" and row["debits_posted"] == "10.5"
    assert row["ledger"] == "cash" and row["code_name"] == "venue_cash" and row["strategy_id"] == "trend"
    assert row["symbol"] == "BTC/USDT"
    await tools.ledger_balances(nonzero=False)
    assert servicer.asked[-1] == lg.GetBalancesRequest()


async def test_bad_balance_filters_are_all_named_before_any_call(books: Any) -> None:
    servicer, tools = books
    with pytest.raises(InvalidArgument) as bad:
        await tools.ledger_balances(venue="Not A Venue", asset="$$$", strategy="Trend!", ledger="cashier")
    assert _fields(bad) == {"venue", "asset", "strategy", "ledger"}
    assert "cash, position, fees, realised_pnl, margin, funding_pnl" in str(bad.value)
    assert servicer.asked == []


async def test_transfers_render_accounts_links_and_times(books: Any) -> None:
    servicer, tools = books
    got = await tools.ledger_transfers(
        strategy="trend",
        account_id="a" * 32,
        since="2026-11-18T08:00:00Z",
        until="2026-11-18T09:00",
        limit=10,
    )
    asked = servicer.asked[-1]
    assert asked.strategy_id == "trend" and asked.account_id == "a" * 32 and asked.page_size == 10
    assert asked.newest_first
    assert asked.since_ns == 1_794_988_800_000_000_000
    assert asked.until_ns == asked.since_ns + 3600 * 1_000_000_000  # no offset: UTC
    [paid] = got["transfers"]
    assert paid["amount"] == "0.064" and paid["time"] == "2026-11-18T11:06:40Z" and paid["ts_ns"] == T0
    assert paid["debit"]["code_name"] == "fees_paid" and paid["credit"]["venue"] == "sim"
    assert paid["links"] == {"fill_id": "f-1", "order_id": "o-1", "strategy_id": "trend"}
    assert paid["ledger"] == "cash" and paid["pending_id"] is None
    assert got["next_page_token"] == "next"


async def test_bad_transfer_arguments_are_all_named(books: Any) -> None:
    servicer, tools = books
    with pytest.raises(InvalidArgument) as bad:
        await tools.ledger_transfers(account_id="XYZ", since="yesterday", until="10000-01-01", limit=1001)
    assert _fields(bad) == {"account_id", "since", "until", "limit"}
    with pytest.raises(InvalidArgument) as backwards:
        await tools.ledger_transfers(since="2026-11-18T09:00:00Z", until="2026-11-18T08:00:00Z")
    assert _fields(backwards) == {"until"}
    with pytest.raises(InvalidArgument) as late:
        await tools.ledger_transfers(since="2300-01-01T00:00:00Z")
    assert "after 2262" in str(late.value)
    assert servicer.asked == []


async def test_pnl_per_strategy_with_a_thinned_curve(books: Any) -> None:
    servicer, tools = books
    got = await tools.ledger_pnl(
        strategy="trend", venue="sim", since="2026-11-18T08:00:00+01:00", curve_points=10
    )
    asked = servicer.asked[-1]
    assert asked.strategy_id == "trend" and asked.venue == "sim"
    assert asked.since_ns == 1_794_988_800_000_000_000 - 3600 * 1_000_000_000
    [trend] = got["strategies"]
    assert (trend["realised"], trend["fees"], trend["unrealised"], trend["total"]) == (
        "12.5",
        "-0.75",
        "-1.25",
        "10.5",
    )
    assert trend["fills"] == 4 and trend["asset"] == "USDT"
    assert len(trend["curve"]) == 10 and trend["curve"][-1]["pnl"] == "99"
    assert trend["curve"][-1]["time"] == "2026-11-18T11:08:19Z"
    assert got["total"]["strategy_id"] is None and len(got["total"]["curve"]) == 10
    assert got["marks"] == [
        {
            "venue": "sim",
            "symbol": "BTC/USDT",
            "price": "64000.5",
            "ts_ns": T0,
            "time": "2026-11-18T11:06:40Z",
        }
    ]
    flat = await tools.ledger_pnl(curve_points=0)
    assert flat["strategies"][0]["curve"] == []
    with pytest.raises(InvalidArgument) as bad:
        await tools.ledger_pnl(strategy="", venue="A B", curve_points=201)
    assert _fields(bad) == {"venue", "curve_points"}


async def test_verify_reports_mismatches_and_problems(books: Any) -> None:
    _, tools = books
    got = await tools.ledger_verify()
    assert got["ok"] is False and got["accounts"] == 2 and got["transfers"] == 7
    assert got["mismatches"] == [
        {"account_id": "a" * 32, "field": "debits_posted", "stored": "10.5", "recomputed": "10.4"}
    ]
    assert got["problems"] == ["x"]


async def test_trace_steps_in_order_with_their_fields(books: Any) -> None:
    servicer, tools = books
    got = await tools.ledger_trace("  f-1 ")
    assert servicer.asked[-1].id == "f-1"
    assert got["kind"] == "fill" and [s["kind"] for s in got["steps"]] == ["signal", "fill"]
    assert got["steps"][1]["fields"] == {"fill_price": "64000.5"}
    assert got["steps"][0]["time"] == "2026-11-18T11:06:40Z"
    with pytest.raises(NotFound, match="nobody"):
        await tools.ledger_trace("nobody")
    for wrong in ("", "   ", "x" * 201):
        with pytest.raises(InvalidArgument) as bad:
            await tools.ledger_trace(wrong)
        assert _fields(bad) == {"id"}


def test_thinning_keeps_the_latest_point_and_at_most_the_count() -> None:
    points = [lg.EquityPoint(ts_ns=i, pnl=str(i)) for i in range(1, 8)]
    assert [p["pnl"] for p in thinned(points, 3)] == ["1", "4", "7"]
    assert [p["pnl"] for p in thinned(points, 100)] == [str(i) for i in range(1, 8)]
    assert thinned(points, 0) == [] and thinned([], 5) == []
    assert len(thinned(points, 2)) == 2 and thinned(points, 2)[-1]["pnl"] == "7"


def test_times_are_iso_8601_in_utc_unless_an_offset_is_given() -> None:
    assert checked_time("since", None) == 0 and checked_time("since", "") == 0
    assert checked_time("since", "1970-01-01T00:00:01Z") == 1_000_000_000
    assert checked_time("since", "1970-01-01T01:00:01+01:00") == 1_000_000_000
    assert checked_time("since", "1970-01-01T00:00:00.000002") == 2000
    with pytest.raises(InvalidArgument, match="since: 'noon' is not an ISO 8601 time"):
        checked_time("since", "noon")
