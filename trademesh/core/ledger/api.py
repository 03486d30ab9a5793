"""The ledger's gRPC API (trademesh.ledger.v1.Ledger) over the service it runs in. Read only.

Bad input is INVALID_ARGUMENT with a field violation per bad field (trademesh.core.platform.rpc's edge maps
trademesh.core.platform.errors). Balances and positions are the engine core's (in memory, equal to the stored
ones); transfers, the equity curve, Verify and Trace read PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from trademesh.core.ledger.attribution import Attribution
from trademesh.core.ledger.convert import balance_to_pb, transfer_to_pb
from trademesh.core.ledger.engine.model import LedgerId
from trademesh.core.ledger.metrics import record_verify
from trademesh.core.ledger.pnl import PnlQuery, pnl_report
from trademesh.core.ledger.posting import Poster
from trademesh.core.ledger.store import MAX_PAGE_SIZE, LedgerStore
from trademesh.core.ledger.trace import trace
from trademesh.core.ledger.verify import verify
from trademesh.core.ledger.watch import TransferWatch
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc

__all__ = ["SERVICE_NAME", "LedgerServicer", "LedgerState", "ledger_service"]

SERVICE_NAME = lg.DESCRIPTOR.services_by_name["Ledger"].full_name
_TEXT = 128  # the longest id, strategy or asset a filter takes
_DEFAULT_PAGE = 100


class LedgerState(Protocol):
    """What the service gives the API."""

    @property
    def store(self) -> LedgerStore: ...

    @property
    def poster(self) -> Poster: ...

    @property
    def watch(self) -> TransferWatch: ...

    @property
    def redis(self) -> BusRedis: ...

    attribution: Attribution | None


def _venue(value: str) -> str:
    return venue_name(value) if value else ""


def _text(field: str, value: str) -> str:
    if len(value) > _TEXT:
        raise InvalidArgument.field(field, f"{shown(value)} is longer than {_TEXT} characters")
    return value


def _ledger(value: int) -> LedgerId | None:
    if value == lg.LEDGER_KIND_UNSPECIFIED:
        return None
    try:
        return LedgerId(value)
    except ValueError:
        raise InvalidArgument.field("ledger", f"{value} is not a LedgerKind") from None


def _times(since_ns: int, until_ns: int) -> None:
    if since_ns < 0:
        raise InvalidArgument.field("since_ns", "must not be negative")
    if until_ns < 0:
        raise InvalidArgument.field("until_ns", "must not be negative")
    if since_ns and until_ns and until_ns <= since_ns:
        raise InvalidArgument.field("until_ns", "must be after since_ns")


class LedgerServicer(lg_grpc.LedgerServicer):
    def __init__(self, state: LedgerState) -> None:
        self.state = state

    async def GetBalances(
        self, request: lg.GetBalancesRequest, context: Context[lg.GetBalancesRequest, lg.GetBalancesResponse]
    ) -> lg.GetBalancesResponse:
        venue = _venue(request.venue)
        asset = _text("asset", request.asset)
        strategy = _text("strategy_id", request.strategy_id)
        ledger = _ledger(request.ledger)
        core = await self.state.poster.view()
        answer = lg.GetBalancesResponse()
        for account in sorted(core.accounts.values(), key=lambda a: (a.key.ledger, a.key.code, a.id)):
            key = account.key
            if (venue and key.venue != venue) or (asset and key.asset != asset):
                continue
            if (strategy and key.strategy != strategy) or (ledger is not None and key.ledger != ledger):
                continue
            balance = core.balances.get(account.id)
            if balance is None or (request.nonzero and not _moved(balance)):
                continue
            answer.balances.append(balance_to_pb(account, balance))
        return answer

    async def ListTransfers(
        self,
        request: lg.ListTransfersRequest,
        context: Context[lg.ListTransfersRequest, lg.ListTransfersResponse],
    ) -> lg.ListTransfersResponse:
        _times(request.since_ns, request.until_ns)
        size = request.page_size or _DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidArgument.field("page_size", f"{size} is not within 1-{MAX_PAGE_SIZE}")
        page = await self.state.store.list_transfers(
            account_id=_text("account_id", request.account_id) or None,
            strategy_id=_text("strategy_id", request.strategy_id) or None,
            venue=_venue(request.venue) or None,
            ledger=_ledger(request.ledger),
            asset=_text("asset", request.asset) or None,
            since_ns=request.since_ns or None,
            until_ns=request.until_ns or None,
            page_size=size,
            page_token=_text("page_token", request.page_token),
            newest_first=request.newest_first,
        )
        accounts = (await self.state.poster.view()).accounts
        return lg.ListTransfersResponse(
            transfers=[transfer_to_pb(t, accounts) for t in page.transfers],
            next_page_token=page.next_page_token,
        )

    async def GetPnl(
        self, request: lg.GetPnlRequest, context: Context[lg.GetPnlRequest, lg.GetPnlResponse]
    ) -> lg.GetPnlResponse:
        _times(request.since_ns, request.until_ns)
        if request.bucket_ns < 0:
            raise InvalidArgument.field("bucket_ns", "must not be negative")
        query = PnlQuery(
            strategy=_text("strategy_id", request.strategy_id),
            venue=_venue(request.venue),
            since_ns=request.since_ns,
            until_ns=request.until_ns,
            bucket_ns=request.bucket_ns,
            round_trips=request.round_trips,
        )
        return await pnl_report(self.state.store, await self.state.poster.view(), self.state.redis, query)

    async def WatchTransfers(
        self,
        request: lg.WatchTransfersRequest,
        context: Context[lg.WatchTransfersRequest, lg.WatchTransfersResponse],
    ) -> AsyncIterator[lg.WatchTransfersResponse]:
        watcher = self.state.watch.add(_venue(request.venue), _text("strategy_id", request.strategy_id))
        await context.send_initial_metadata(())  # the stream is open before its first transfer
        try:
            async for batch in watcher.outbox.batches(500):
                yield lg.WatchTransfersResponse(transfers=batch)
        finally:
            self.state.watch.remove(watcher)

    async def Verify(
        self, request: lg.VerifyRequest, context: Context[lg.VerifyRequest, lg.VerifyResponse]
    ) -> lg.VerifyResponse:
        report = await verify(self.state.store.pool)
        record_verify(report)
        return lg.VerifyResponse(
            ok=report.ok,
            accounts=report.accounts,
            transfers=report.transfers,
            mismatches=[
                lg.Mismatch(
                    account_id=m.account_id,
                    field=m.field,
                    stored=_shown(m.stored),
                    recomputed=_shown(m.recomputed),
                )
                for m in report.mismatches
            ],
            problems=[f"{p.kind} {p.subject}: {p.detail}" for p in report.problems],
        )

    async def Trace(
        self, request: lg.TraceRequest, context: Context[lg.TraceRequest, lg.TraceResponse]
    ) -> lg.TraceResponse:
        found = await trace(self.state.store.pool, request.id)
        return lg.TraceResponse(
            id=found.id,
            kind=found.kind,
            steps=[
                lg.TraceStep(
                    kind=s.kind,
                    id=s.id,
                    ts_ns=s.ts_ns,
                    summary=s.summary,
                    fields=[lg.Field(name=n, value=v) for n, v in s.fields],
                )
                for s in found.steps
            ],
        )


def _moved(balance: object) -> bool:
    return any(
        getattr(balance, part) != 0
        for part in ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
    )


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def ledger_service(state: LedgerState) -> Service:
    """The Ledger service for trademesh.core.platform.rpc.server.create_server."""
    return Service(SERVICE_NAME, LedgerServicer(state), lg_grpc.add_LedgerServicer_to_server)
