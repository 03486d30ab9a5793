"""The ledger as a real process on a real sim, ingest, inspector, Redis and PostgreSQL: the
inspector's orders fill at the sim, ingest puts the executions on the bus, and the ledger posts
each fill once, attributed to the strategy whose intent placed it, with realised PnL exact to
the fills (average cost); its books verify. A ledger killed with SIGKILL while fills keep
coming posts each of them once when it is back. Bad arguments are INVALID_ARGUMENT naming the
field, and the service keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2, status_pb2

from tests.bus_signing import entry_fields
from tests.forked_services import run_command
from tests.integration.inspector_mesh import AUTH, FAST_WALK, InspectorMesh, inspector_mesh, intent
from tests.integration.mesh import TcpProxy
from tests.integration.postgres_server import database_url, new_database
from tests.integration.prometheus_support import free_port
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, metric_samples, metrics_page, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import INTENTS, SIGNALS
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # whole meshes and a kill
__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

WAIT_S = 60.0
SIZE = Decimal("0.01")


@dataclass
class Books:
    mesh: InspectorMesh
    database: str
    directory: Path
    args: tuple[str, ...] = ()
    venue_address: str = ""  # where the ledger finds the sim (its address when empty)
    process: ServiceProcess | None = None
    channel: grpc.aio.Channel | None = None
    starts: int = 0

    @property
    def stub(self) -> lg_grpc.LedgerAsyncStub:
        assert self.channel is not None
        return lg_grpc.LedgerStub(self.channel)

    def start(self) -> None:
        log = self.directory / f"ledger-{self.starts}.log"
        self.starts += 1
        venue = f"sim={self.venue_address or self.mesh.venue.address}"
        args = ["ledger", "--port", "0", "--metrics-port", "-1", "--venue", venue, *self.args]
        env = {TOKEN: TEST_TOKEN, REDIS_URL: self.mesh.bus, DATABASE_URL: self.database}
        with log.open("w") as log_file:
            self.process = start_service(args, env=env, stderr=log_file)
        self.channel = grpc.aio.insecure_channel(self.process.address)

    async def stop(self, kill: bool = False) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self.process is not None:
            if kill:
                self.process.process.kill()
                await asyncio.to_thread(self.process.process.wait, 15)
            else:
                await asyncio.to_thread(self.process.terminate)
            self.process = None

    async def transfers(self, **filters: object) -> list[lg.Transfer]:
        found: list[lg.Transfer] = []
        token = ""
        while True:
            request = lg.ListTransfersRequest(page_size=1000, page_token=token, **filters)  # type: ignore[arg-type]
            page = await self.stub.ListTransfers(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
            found += page.transfers
            token = page.next_page_token
            if not token:
                return found

    async def pnl(self, strategy: str) -> lg.StrategyPnl:
        answer = await self.stub.GetPnl(
            lg.GetPnlRequest(strategy_id=strategy), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        (line,) = [s for s in answer.strategies if s.asset == "USDT"]
        return line

    async def pnl_report(self, round_trips: bool = False) -> lg.GetPnlResponse:
        answer: lg.GetPnlResponse = await self.stub.GetPnl(
            lg.GetPnlRequest(round_trips=round_trips), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        return answer

    async def verify(self) -> lg.VerifyResponse:
        answer: lg.VerifyResponse = await self.stub.Verify(
            lg.VerifyRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        return answer


@contextlib.asynccontextmanager
async def books(
    tmp_path: Path, database_url: str, redis_url: str, venue_config: str | None = None, *ledger_args: str
) -> AsyncIterator[Books]:
    async with (
        new_database(database_url, "ledger") as database,
        inspector_mesh(tmp_path, redis_url, via_bus=True, venue_config=venue_config) as mesh,
    ):
        # The inspector's group on exec.{sim} exists before the first order: the ledger's too.
        await until(lambda: _streams(mesh.bus), WAIT_S, what="the executions stream")
        ledger = Books(mesh, database, tmp_path, ledger_args)
        ledger.start()
        try:
            yield ledger
        finally:
            await ledger.stop()


async def _streams(bus: str) -> bool | None:
    client = aioredis.from_url(bus)
    try:
        return True if await client.exists("exec.{sim}") else None
    finally:
        await client.aclose()


async def _fills(bus: str, client_order_id: str) -> list[tf.Fill]:
    """The fills of an order, as the venue put them on the bus."""
    client = aioredis.from_url(bus)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange("exec.{sim}")  # type: ignore[assignment]
    finally:
        await client.aclose()
    found: dict[str, tf.Fill] = {}
    for _, fields in entries:
        for execution in decode(fields).executions.executions:
            if execution.HasField("fill") and execution.fill.client_order_id == client_order_id:
                found[execution.fill.fill_id] = execution.fill
    return list(found.values())


async def _whole(mesh: InspectorMesh, client_order_id: str) -> list[tf.Fill]:
    """The order's fills once it is done at the venue and all its fills are on the bus (ingest
    publishes them a moment after; a market order may fill only in part on a thin book)."""

    async def found() -> list[tf.Fill] | None:
        try:
            answer = await mesh.venue_stubs.tf.GetOrder(
                tf.GetOrderRequest(client_order_id=client_order_id), timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:  # allowed, then refused by the venue: no order, no fill
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        if answer.order.status in (tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_PARTIALLY_FILLED):
            return None
        fills = await _fills(mesh.bus, client_order_id)
        filled = sum((Decimal(f.size) for f in fills), Decimal(0))
        return fills if filled == Decimal(answer.order.filled_size or "0") else None

    return await until(found, WAIT_S, what=f"the fills of {client_order_id}")


async def _held(mesh: InspectorMesh, size: Decimal) -> bool | None:
    return True if any(Decimal(p.size) == size for p in await mesh.positions()) else None


async def _posted_fills(ledger: Books, count: int) -> list[lg.Transfer] | None:
    transfers = await ledger.transfers()
    return transfers if len({t.links.fill_id for t in transfers if t.links.fill_id}) >= count else None


async def test_fills_post_once_attributed_to_their_strategy_with_exact_realised_pnl(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with books(tmp_path, database_url, redis_url) as ledger:
        mesh = ledger.mesh
        bought = await mesh.submit(intent("buy", str(SIZE), intent_id="trend-in", strategy_id="trend"))
        # The exit reduces the position: it must be in the inspector's book first (its fills
        # come on the bus, after SubmitIntent's answer on a loaded machine).
        await until(lambda: _held(mesh, SIZE), WAIT_S, what="the inspector holding the entry")
        sold = await mesh.submit(
            intent("sell", str(SIZE), intent_id="trend-out", strategy_id="trend", reduce_only=True)
        )
        other = await mesh.submit(intent("buy", "0.02", intent_id="mean-in", strategy_id="mean"))
        answers = [bought, sold, other]
        assert all(a.action == rk.RISK_ACTION_ALLOW for a in answers), [a.reasons for a in answers]
        orders = [bought.client_order_id, sold.client_order_id, other.client_order_id]
        fills = {order: await _whole(mesh, order) for order in orders}
        assert all(fills.values()), fills
        count = sum(len(f) for f in fills.values())
        transfers = await until(lambda: _posted_fills(ledger, count), WAIT_S, what="every fill posted")

        # Each fill's transfers carry the strategy and intent of the order it filled.
        by_fill = {t.links.fill_id: t.links for t in transfers if t.links.fill_id}
        for order, strategy, intent_id in zip(
            orders, ("trend", "trend", "mean"), ("trend-in", "trend-out", "mean-in"), strict=True
        ):
            for fill in fills[order]:
                links = by_fill[fill.fill_id]
                assert (links.strategy_id, links.intent_id, links.client_order_id) == (
                    strategy,
                    intent_id,
                    order,
                )

        # The round trip's realised PnL is exactly its fills' (the whole size bought, then sold).
        def notional(order: str) -> Decimal:
            return sum((Decimal(f.price) * Decimal(f.size) for f in fills[order]), Decimal(0))

        def fees(*chosen: str) -> Decimal:
            return sum((Decimal(f.fee) for order in chosen for f in fills[order]), Decimal(0))

        trend = await ledger.pnl("trend")

        def quantity(order: str) -> Decimal:
            return sum((Decimal(f.size) for f in fills[order]), Decimal(0))

        bought_qty, sold_qty = quantity(bought.client_order_id), quantity(sold.client_order_id)
        released = notional(bought.client_order_id) * sold_qty / bought_qty  # average cost
        expected = notional(sold.client_order_id) - released
        if sold_qty == bought_qty:  # the whole size bought, then sold: exact to the fills
            assert Decimal(trend.realised) == expected
        else:  # a market order filled in part on a thin book: the average cost is rounded
            assert abs(Decimal(trend.realised) - expected) <= Decimal("1e-8"), (trend.realised, expected)
        assert Decimal(trend.fees) == -fees(bought.client_order_id, sold.client_order_id)
        assert trend.fills == len(fills[bought.client_order_id]) + len(fills[sold.client_order_id])
        mean = await ledger.pnl("mean")
        assert Decimal(mean.realised) == 0 and Decimal(mean.fees) == -fees(other.client_order_id)

        # Round trips, when asked: trend's position went from flat back to flat (when the exit
        # filled whole), a winner when it realised more than its fees; mean's is still open.
        counted = {s.strategy_id: s for s in (await ledger.pnl_report(round_trips=True)).strategies}
        flat = sold_qty == bought_qty
        net = Decimal(counted["trend"].realised) + Decimal(counted["trend"].fees)
        assert (counted["trend"].round_trips, counted["trend"].winners) == (int(flat), int(flat and net > 0))
        assert (counted["mean"].round_trips, counted["mean"].winners) == (0, 0)
        assert {s.round_trips for s in (await ledger.pnl_report()).strategies} == {0}  # not asked

        # The books hold together, and the positions are the fills' sums.
        assert (await ledger.verify()).ok
        balances = await ledger.stub.GetBalances(
            lg.GetBalancesRequest(strategy_id="mean", ledger=lg.LEDGER_KIND_POSITION), metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )  # fmt: skip
        held = [b for b in balances.balances if b.account.code_name == "spot_quantity"]
        assert [Decimal(b.balance) for b in held] == [quantity(other.client_order_id)]

        # The commands, straight on the database: the books verify; a fill traces to its order's
        # check by the inspector and on to its transfers.
        verified = await _cli("ledger", "verify", "--database-url", ledger.database)
        assert verified.returncode == 0 and "consistent" in verified.stdout, verified
        first = fills[bought.client_order_id][0]
        traced = await _cli("trace", first.fill_id, "--database-url", ledger.database)
        assert traced.returncode == 0, traced
        assert f"{first.fill_id} is a fill" in traced.stdout
        assert "risk_check" in traced.stdout and "transfer" in traced.stdout and "trend-in" in traced.stdout
        unknown = await _cli("trace", "no-such-id", "--database-url", ledger.database)
        assert unknown.returncode == 2 and "no-such-id" in unknown.stderr


async def _logged(path: Path, text: str) -> bool | None:
    written = await asyncio.to_thread(path.read_text) if await asyncio.to_thread(path.exists) else ""
    return True if text in written else None


async def test_a_venue_answering_only_after_the_ledger_started_opens_the_books_and_its_fills_post(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """The ledger's books open on the venues' balances; a venue that cannot answer yet (the
    ledger's first calls refused: a venue restarting, or a call past its deadline on a loaded
    machine) is asked again until it answers. Its balance is the opening deposit and its fills
    post (books opened without it refused its every fill: its cash account below zero)."""
    async with (
        new_database(database_url, "ledger") as database,
        inspector_mesh(tmp_path, redis_url, via_bus=True) as mesh,
    ):
        await until(lambda: _streams(mesh.bus), WAIT_S, what="the executions stream")
        link = TcpProxy("127.0.0.1", free_port())  # to nothing yet: each connection closed at once
        await link.start()
        ledger = Books(mesh, database, tmp_path, venue_address=link.address)
        ledger.start()
        try:
            log = tmp_path / "ledger-0.log"
            asked = "no answer yet from sim"
            await until(lambda: _logged(log, asked), WAIT_S, what="the ledger asking again")
            assert not await ledger.transfers()  # no books opened without the venue
            host, port = mesh.venue.address.rsplit(":", 1)
            link.target = (host, int(port))  # the venue answers from now on
            await until(lambda: _opened(ledger), WAIT_S, what="the books opened")
            opening = await ledger.transfers()
            held = await mesh.venue_stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
            usdt = next(b for b in held.balances if b.asset == "USDT")
            deposits = {t.links.event_id: Decimal(t.amount) for t in opening}
            assert deposits["opening/sim/USDT"] == Decimal(usdt.total), deposits

            bought = await mesh.submit(intent("buy", str(SIZE), intent_id="late-in", strategy_id="late"))
            assert bought.action == rk.RISK_ACTION_ALLOW, bought.reasons
            fills = await _whole(mesh, bought.client_order_id)
            assert fills
            await until(lambda: _posted_fills(ledger, len(fills)), WAIT_S, what="the venue's fills posted")
            assert (await ledger.pnl("late")).fills == len(fills)
            assert (await ledger.verify()).ok
        finally:
            await ledger.stop()
            await link.stop()


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_command, list(args), timeout_s=60)


async def test_a_killed_ledger_posts_every_fill_once_when_back(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with books(tmp_path, database_url, redis_url) as ledger:
        mesh = ledger.mesh
        placed: list[str] = []
        # The books open on the venue's balances and read the executions from then on: a fill
        # before the opening is in its deposit, not posted (docs/ledger.md). A ledger killed before
        # its books opened starts afresh on balances that hold the earlier fills.
        await until(lambda: _opened(ledger), WAIT_S, what="the books opened")

        async def trade(rounds: range) -> None:
            for n in rounds:
                side = "buy" if n % 2 == 0 else "sell"
                answer = await mesh.submit(
                    intent(side, "0.001", intent_id=f"k-{n}", strategy_id="k", reduce_only=side == "sell")
                )
                if answer.client_order_id:  # a sell finding no position yet is blocked: no order
                    placed.append(answer.client_order_id)

        await trade(range(0, 6))
        before = len(placed)
        trading = asyncio.create_task(trade(range(6, 30)))

        async def under_way() -> bool | None:  # a few of the rounds placed, most still to come
            return True if len(placed) >= before + 3 or trading.done() else None

        await until(under_way, WAIT_S, 0.02, "trading under way")
        await ledger.stop(kill=True)  # mid-stream: entries read and not acknowledged, or not read
        await trading
        ledger.start()
        expected = {f.fill_id for order in placed for f in await _whole(mesh, order)}
        await until(
            lambda: _posted_fills(ledger, len(expected)), WAIT_S, what="every fill posted after the kill"
        )
        connection = await asyncpg.connect(ledger.database)
        try:
            events = await connection.fetchval(
                "SELECT count(*) FROM ledger_events WHERE event_id LIKE 'fill/%'"
            )
            per_fill = await connection.fetchval(
                "SELECT count(DISTINCT event_id) FROM ledger_transfers WHERE fill_id <> ''"
            )
        finally:
            await connection.close()
        assert events == per_fill == len(expected)  # each fill once: none twice, none lost
        assert (await ledger.verify()).ok


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                request = error_details_pb2.BadRequest()
                if detail.Unpack(request):
                    return [v.field for v in request.field_violations]
    return []


async def test_the_ledger_verifies_its_books_on_a_timer_and_a_tampered_balance_shows(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """--verify-every-s: the leader checks its books by itself; the gauges the
    LedgerVerifyMismatch alert reads say 0, then 1 once a stored balance is changed behind its
    back (in the database, not through the ledger)."""
    async with books(
        tmp_path, database_url, redis_url, None, "--metrics-port", "0", "--verify-every-s", "1"
    ) as ledger:
        assert ledger.process is not None
        port = ledger.process.info["metrics_port"]

        async def mismatches(at_least: float) -> float | None:
            samples = metric_samples(await metrics_page(port), "trademesh_ledger_verify_mismatches")
            value = samples.get("")
            return value if value is not None and value >= at_least else None

        # The opening deposits posted and verified: the gauge is there, at 0.
        await until(lambda: _opened(ledger), WAIT_S, what="the opening deposits")
        assert await until(lambda: mismatches(0), WAIT_S, what="a first verify") == 0
        connection = await asyncpg.connect(ledger.database)
        try:
            await connection.execute(
                "UPDATE ledger_balances SET credits_posted = credits_posted + 1 WHERE account_id ="
                " (SELECT account_id FROM ledger_balances WHERE credits_posted > 0 LIMIT 1)"
            )
        finally:
            await connection.close()
        assert await until(lambda: mismatches(1), 10, what="the tampered balance found") >= 1
        assert not (await ledger.verify()).ok


async def _opened(ledger: Books) -> bool | None:
    return True if await ledger.transfers() else None


async def test_bad_arguments_are_field_violations_and_the_ledger_serves_on(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with books(tmp_path, database_url, redis_url) as ledger:
        await until(lambda: _serving(ledger), WAIT_S, what="the ledger serving")
        stub = ledger.stub
        bad: list[tuple[Any, Any, str]] = [
            (stub.GetPnl, lg.GetPnlRequest(since_ns=200, until_ns=100), "until_ns"),
            (stub.GetPnl, lg.GetPnlRequest(bucket_ns=-1), "bucket_ns"),
            (stub.ListTransfers, lg.ListTransfersRequest(page_size=5000), "page_size"),
            (stub.ListTransfers, lg.ListTransfersRequest(page_token="not-a-token"), "page_token"),
            (stub.GetBalances, lg.GetBalancesRequest(ledger=99), "ledger"),  # type: ignore[arg-type]
            (stub.GetBalances, lg.GetBalancesRequest(venue="Not A Venue"), "venue"),
            (stub.Trace, lg.TraceRequest(id=""), "id"),
        ]
        for method, request, field in bad:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await method(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, caught.value.details())
            assert _violations(caught.value) == [field], caught.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Trace(lg.TraceRequest(id="no-such-id"), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert (await ledger.verify()).ok  # and it serves on


async def _serving(ledger: Books) -> bool | None:
    try:
        await ledger.verify()
    except grpc.aio.AioRpcError:
        return None
    return True


PERP = "BTC/USDT:USDT"
PERP_CONFIG = """
[balances]
USDT = "100000"
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
[[symbols]]
symbol = "BTC/USDT:USDT"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
funding_rate = "0.0003"
funding_interval_s = 2
"""


async def test_a_perpetual_position_books_its_fills_margin_and_funding(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """A long on the sim's perpetual pays funding every 2 s; the ledger posts each payment
    (asked for every second) to the strategy holding the position, exactly the venue's amount."""
    async with books(tmp_path, database_url, redis_url, PERP_CONFIG, "--funding-every-s", "1") as ledger:
        mesh = ledger.mesh
        opened = await mesh.submit(
            intent("buy", "0.01", symbol=PERP, intent_id="perp-in", strategy_id="carry")
        )
        assert opened.client_order_id, opened
        stubs = mesh.venue_stubs

        async def paid() -> list[tf.FundingPayment] | None:
            answer = await stubs.tf.ListFundingPayments(
                tf.ListFundingPaymentsRequest(symbol=PERP), timeout=CALL_TIMEOUT_S
            )
            return list(answer.payments) if len(answer.payments) >= 2 else None

        payments = await until(paid, WAIT_S, what="two funding payments at the sim")

        async def posted() -> list[lg.Transfer] | None:
            transfers = await ledger.transfers(strategy_id="carry", ledger=lg.LEDGER_KIND_FUNDING_PNL)
            events = {t.links.event_id for t in transfers}
            return transfers if all(f"funding/sim/{p.funding_id}" in events for p in payments) else None

        await until(posted, WAIT_S, what="the payments posted")
        line = await ledger.pnl("carry")
        answer = await stubs.tf.ListFundingPayments(
            tf.ListFundingPaymentsRequest(symbol=PERP, since_ns=0), timeout=CALL_TIMEOUT_S
        )
        connection = await asyncpg.connect(ledger.database)
        try:
            booked = await connection.fetch(
                "SELECT event_id FROM ledger_events WHERE event_id LIKE 'funding/%'"
            )
        finally:
            await connection.close()
        ids = {row["event_id"] for row in booked}
        venue_total = sum(
            (Decimal(p.amount) for p in answer.payments if f"funding/sim/{p.funding_id}" in ids), Decimal(0)
        )
        assert Decimal(line.funding) == venue_total != 0  # a long pays a positive rate: < 0
        assert Decimal(line.funding) < 0
        # The position's initial margin is held (pending) on the margin ledger.
        held = await ledger.stub.GetBalances(
            lg.GetBalancesRequest(strategy_id="carry", ledger=lg.LEDGER_KIND_MARGIN), metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )  # fmt: skip
        assert any(Decimal(b.debits_pending) > 0 for b in held.balances), held
        assert (await ledger.verify()).ok


async def _publish(bus_url: str, stream: str, envelope: bus.Envelope) -> None:
    client = aioredis.from_url(bus_url)
    try:
        await client.xadd(stream, entry_fields(stream, envelope.SerializeToString()))
    finally:
        await client.aclose()


async def _target_filled(mesh: InspectorMesh) -> str | None:
    """The take-profit that filled (the inspector's audit keeps every order it placed)."""
    audit = await mesh.stub.GetAudit(rk.GetAuditRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    filled = [o for o in audit.orders if o.role == "take_profit" and o.fills > 0]
    return filled[0].client_order_id if filled else None


async def _traced_to(database: str, fill_id: str, signal_id: str) -> str | None:
    """The trace of the fill once it shows the whole chain (the recorder and the ledger write
    their parts in their own time)."""
    traced = await _cli("trace", fill_id, "--database-url", database)
    assert traced.returncode == 0, traced
    whole = all(
        f" {kind} " in traced.stdout for kind in ("signal", "risk_check", "order", "fill", "transfer")
    )
    return traced.stdout if whole and signal_id in traced.stdout else None


async def test_a_take_profits_fill_traces_back_to_the_signal_of_its_positions_entry(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """Issue 37, item 10: a stop's or a target's fill (half of all fills) stopped at its order.
    Its protective orders carry the position's entry's intent and strategy; the ledger keeps
    their links, and `trademesh trace <fill id>` walks from the target's fill to the signal
    (the real recorder, inspector and ledger; the advisor's part played by the bus entries)."""
    async with books(tmp_path, database_url, redis_url, FAST_WALK) as ledger:
        mesh = ledger.mesh
        env = {TOKEN: TEST_TOKEN, REDIS_URL: mesh.bus}
        args = ["recorder", "--port", "0", "--metrics-port", "-1", "--database-url", ledger.database]
        with (tmp_path / "recorder.log").open("w") as log_file:
            recorder = start_service(args, env=env, stderr=log_file)
        try:
            mark = await mesh.mark()
            now = time.time_ns()
            signal = sig.Signal(
                signal_id="sig-tp", venue="sim", symbol="BTC/USDT", direction=sig.DIRECTION_LONG,
                conviction="0.8", score="0.8", threshold="0.5", strategy_id="trend", ts_event_ns=now,
                ts_signal_ns=now,
            )  # fmt: skip
            signals = bus.Envelope(source="test", ts_publish_ns=now)
            signals.signals.signals.append(signal)
            await _publish(mesh.bus, SIGNALS, signals)
            entry = intent(
                "buy", "0.01", intent_id="int-tp", decision_id="dec-tp", signal_id="sig-tp",
                strategy_id="trend", stop_loss=str(mark - 2000), take_profit=str(mark + 3),
                expires_at_ns=now + 60 * 10**9, ts_intent_ns=now, ts_signal_ns=now,
            )  # fmt: skip
            intents = bus.Envelope(source="test", ts_publish_ns=now)
            intents.intents.intents.append(entry)
            await _publish(mesh.bus, INTENTS, intents)
            target = await until(lambda: _target_filled(mesh), WAIT_S, 0.2, "the take-profit filled")
            fills = await _whole(mesh, target)
            assert fills, "the take-profit filled"
            chain = await until(
                lambda: _traced_to(ledger.database, fills[0].fill_id, "sig-tp"),
                WAIT_S,
                1.0,
                "the whole chain",
            )
            lines = chain.splitlines()
            assert lines[0] == f"{fills[0].fill_id} is a fill; its chain, signal first:"
            assert lines[1].split()[2:4] == ["signal", "sig-tp"]  # the walk reaches the signal
            assert f"allowed: order {entry_order_id('int-tp')}" in chain  # the entry's check
            protects = [line for line in lines if "protects the intent's position: order" in line]
            assert target in chain and any(target in line for line in protects)
            assert "intent_id=int-tp" in chain
        finally:
            await asyncio.to_thread(recorder.terminate)
