"""Tools over the ledger (trademesh.ledger.v1.Ledger), the double-entry books of every fill, fee,
funding payment and deposit: balances, transfers, PnL per strategy with its equity curve, the
books' self-check and the trace of any id back to its signal. All read only (the ledger posts
from the bus, never on request).

Arguments are checked here, every bad one named in one InvalidArgument; money stays the wire's
decimal strings and times are ISO 8601 UTC with int nanoseconds (trademesh.core.tools.render).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.core.tools.inputs import all_checked, bounded, strategy_name
from trademesh.core.tools.render import enum_word, iso_time
from trademesh.core.tools.upstream import Upstream
from trademesh.ledger.v1 import ledger_pb2 as lg

__all__ = [
    "LEDGER",
    "LedgerName",
    "LedgerTools",
    "balance",
    "checked_time",
    "pnl",
    "thinned",
    "trace",
    "transfer",
]

LEDGER = "trademesh.ledger.v1.Ledger"
MAX_TRANSFERS = 1000
MAX_CURVE = 200
MAX_ID = 200
Json = dict[str, Any]
# The seed's six ledgers (LedgerKind without its prefix), as the tools name them.
LedgerName = Literal["cash", "position", "fees", "realised_pnl", "margin", "funding_pnl"]
TimeText = Annotated[
    str, Field(description='ISO 8601, e.g. "2026-11-23T14:00:00Z" (UTC when no offset is given)')
]
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_ACCOUNT = re.compile(r"[0-9a-f]{32}")
_LAST_NS = 2**63


def _ledger_word(value: int) -> str:
    return enum_word(lg.LedgerKind.Name, value, "LEDGER_KIND_")


def _account(item: lg.Account) -> Json:
    return {
        "id": item.id,
        "ledger": _ledger_word(item.ledger),
        "code": item.code,
        "code_name": item.code_name,
        "venue": item.venue or None,
        "symbol": item.symbol or None,
        "asset": item.asset or None,
        "strategy_id": item.strategy_id or None,
    }


def balance(item: lg.Balance) -> Json:
    return {
        **_account(item.account),
        "balance": item.balance,
        "debits_posted": item.debits_posted,
        "credits_posted": item.credits_posted,
        "debits_pending": item.debits_pending,
        "credits_pending": item.credits_pending,
    }


def _links(item: lg.Links) -> Json:
    """The ids that trace the transfer back to its cause; the unset ones left out."""
    return {field.name: value for field, value in item.ListFields() if value}


def _side(account: lg.Account, account_id: str) -> Json:
    if not account.id:
        return {"id": account_id}
    named = _account(account)
    return {k: v for k, v in named.items() if k != "ledger"}


def transfer(item: lg.Transfer) -> Json:
    return {
        "id": item.id,
        "ts_ns": item.ts_ns,
        "time": iso_time(item.ts_ns),
        "ledger": _ledger_word(item.ledger),
        "code": item.code,
        "asset": item.asset,
        "amount": item.amount,
        "debit": _side(item.debit_account, item.debit_account_id),
        "credit": _side(item.credit_account, item.credit_account_id),
        "pending": item.pending,
        "post_pending": item.post_pending,
        "void_pending": item.void_pending,
        "pending_id": item.pending_id or None,
        "links": _links(item.links),
    }


def thinned(points: Sequence[lg.EquityPoint], most: int) -> list[Json]:
    """At most `most` points of a curve, evenly spread, the last (the latest) always kept."""
    if most <= 0 or not points:
        return []
    step = max(1, -(-len(points) // most))
    kept = list(points[::-1][::step])[::-1][-most:]
    return [{"ts_ns": p.ts_ns, "time": iso_time(p.ts_ns), "pnl": p.pnl} for p in kept]


def pnl(item: lg.StrategyPnl, curve_points: int) -> Json:
    return {
        "strategy_id": item.strategy_id or None,
        "asset": item.asset,
        "realised": item.realised,
        "fees": item.fees,
        "funding": item.funding,
        "unrealised": item.unrealised,
        "total": item.total,
        "fills": item.fills,
        "round_trips": item.round_trips,
        "winners": item.winners,
        "curve": thinned(item.curve, curve_points),
    }


def trace(item: lg.TraceResponse) -> Json:
    return {
        "id": item.id,
        "kind": item.kind,
        "steps": [
            {
                "kind": step.kind,
                "id": step.id,
                "ts_ns": step.ts_ns,
                "time": iso_time(step.ts_ns),
                "summary": step.summary,
                "fields": {f.name: f.value for f in step.fields},
            }
            for step in item.steps
        ],
    }


def checked_time(field: str, text: str | None) -> int:
    """ISO 8601 text as ns since the epoch (UTC when it names no offset); 0 when not given."""
    if text is None or text == "":
        return 0
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidArgument.field(
            field, f"{shown(text)} is not an ISO 8601 time such as 2026-11-23T14:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.year < 1970:
        raise InvalidArgument.field(field, f"{shown(text)} is before 1970")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if ns >= _LAST_NS:
        raise InvalidArgument.field(field, f"{shown(text)} is after 2262 (int64 nanoseconds)")
    return ns


def _venue(venue: str | None) -> str:
    return "" if venue is None or venue == "" else venue_name(venue)


def _strategy(strategy: str | None) -> str:
    return "" if strategy is None or strategy == "" else strategy_name(strategy)


def _asset(asset: str | None) -> str:
    if asset is None or asset == "":
        return ""
    if not _ASSET.fullmatch(asset):
        raise InvalidArgument.field("asset", f"{shown(asset)} is not an asset such as BTC or USDT")
    return asset


def _ledger(ledger: str | None) -> int:
    if ledger is None or ledger == "":
        return lg.LEDGER_KIND_UNSPECIFIED
    try:
        return lg.LedgerKind.Value(f"LEDGER_KIND_{ledger.upper()}")
    except ValueError:
        known = ", ".join(n.removeprefix("LEDGER_KIND_").lower() for n in lg.LedgerKind.keys()[1:])
        raise InvalidArgument.field("ledger", f"{shown(ledger)} is not a ledger ({known})") from None


def _account_id(account_id: str | None) -> str:
    if account_id is None or account_id == "":
        return ""
    if not _ACCOUNT.fullmatch(account_id):
        raise InvalidArgument.field("account_id", f"{shown(account_id)} is not an account id (32 hex digits)")
    return account_id


def _period(since_ns: int, until_ns: int) -> None:
    if since_ns and until_ns and until_ns <= since_ns:
        raise InvalidArgument.field("until", "must be after since")


class LedgerTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def ledger_balances(
        self,
        venue: str | None = None,
        asset: str | None = None,
        strategy: str | None = None,
        ledger: LedgerName | None = None,
        nonzero: bool = True,
    ) -> Json:
        """The ledger's account balances (double-entry books of every fill, fee, funding
        payment and deposit), optionally of one venue, asset (BTC, USDT), strategy or ledger
        (cash, position, fees, realised_pnl, margin, funding_pnl); accounts nothing was ever
        posted to are left out unless `nonzero` is false. Each account with its code name (e.g.
        venue_cash, perp_quantity, fees_paid), venue, symbol and strategy (null: not kept per
        symbol or strategy), asset, its balance on its normal side, and the posted and pending
        debits and credits. Amounts are decimal strings in the account's asset."""
        venue_, asset_, strategy_id, kind = all_checked(
            [
                lambda: _venue(venue),
                lambda: _asset(asset),
                lambda: _strategy(strategy),
                lambda: _ledger(ledger),
            ]
        )
        request = lg.GetBalancesRequest(
            venue=venue_, asset=asset_, strategy_id=strategy_id, ledger=kind, nonzero=nonzero
        )
        got = await self._up.unary(LEDGER, None, "GetBalances", request, lg.GetBalancesResponse)
        return {"balances": [balance(b) for b in got.balances]}

    async def ledger_transfers(
        self,
        venue: str | None = None,
        asset: str | None = None,
        strategy: str | None = None,
        ledger: LedgerName | None = None,
        account_id: str | None = None,
        since: TimeText | None = None,
        until: TimeText | None = None,
        limit: int = 50,
        page_token: str = "",
        newest_first: bool = True,
    ) -> Json:
        """The ledger's transfers, newest first (oldest first when `newest_first` is false):
        each moves `amount` of `asset` from its debit account to its credit account, on one
        ledger with a code saying what it is (a fill's cash and quantity, a fee, funding, a
        deposit); pending, post_pending and void_pending mark two-phase transfers. `links`
        names what caused it (fill_id, order_id, client_order_id, intent_id, decision_id,
        signal_id, strategy_id): give any of them to ledger_trace. Filters: `venue`, `asset`,
        `strategy`, `ledger`, `account_id` (32 hex digits, either side), `since` and `until`
        (ISO 8601). `limit` 1 to 1000; `next_page_token` continues the list."""
        venue_, asset_, strategy_id, kind, account, since_ns, until_ns, size = all_checked(
            [
                lambda: _venue(venue),
                lambda: _asset(asset),
                lambda: _strategy(strategy),
                lambda: _ledger(ledger),
                lambda: _account_id(account_id),
                lambda: checked_time("since", since),
                lambda: checked_time("until", until),
                lambda: bounded("limit", limit, 1, MAX_TRANSFERS),
            ]
        )
        _period(since_ns, until_ns)
        request = lg.ListTransfersRequest(
            venue=venue_,
            asset=asset_,
            strategy_id=strategy_id,
            ledger=kind,
            account_id=account,
            since_ns=since_ns,
            until_ns=until_ns,
            page_size=size,
            page_token=page_token,
            newest_first=newest_first,
        )
        got = await self._up.unary(LEDGER, None, "ListTransfers", request, lg.ListTransfersResponse)
        return {"transfers": [transfer(t) for t in got.transfers], "next_page_token": got.next_page_token}

    async def ledger_pnl(
        self,
        strategy: str | None = None,
        venue: str | None = None,
        since: TimeText | None = None,
        until: TimeText | None = None,
        curve_points: int = 24,
    ) -> Json:
        """Profit and loss per strategy from the ledger, optionally of one strategy or venue,
        over a period (`since`, `until`: ISO 8601; default from the first transfer until now).
        Per strategy (strategy_id null: the unattributed book, orders no strategy placed) and in
        total, in the quote asset as decimal strings: realised, fees and funding (signed as they
        affect PnL: a fee paid is negative), unrealised at the latest marks, total (the sum of
        the four), the number of fills, the round trips closed in the period (a position opened
        from flat and closed back to flat) and the winners among them (realised net of fees
        above 0: winners / round_trips is the hit rate); and the equity curve, the cumulative
        realised + fees + funding over time, thinned to `curve_points` points (0 to 200; 0: no
        curve). `marks` are the prices unrealised PnL was valued at."""
        strategy_id, venue_, since_ns, until_ns, points = all_checked(
            [
                lambda: _strategy(strategy),
                lambda: _venue(venue),
                lambda: checked_time("since", since),
                lambda: checked_time("until", until),
                lambda: bounded("curve_points", curve_points, 0, MAX_CURVE),
            ]
        )
        _period(since_ns, until_ns)
        request = lg.GetPnlRequest(
            strategy_id=strategy_id, venue=venue_, since_ns=since_ns, until_ns=until_ns, round_trips=True
        )
        got = await self._up.unary(LEDGER, None, "GetPnl", request, lg.GetPnlResponse)
        return {
            "strategies": [pnl(s, points) for s in got.strategies],
            "total": pnl(got.total, points),
            "marks": [
                {
                    "venue": m.venue,
                    "symbol": m.symbol,
                    "price": m.price,
                    "ts_ns": m.ts_ns,
                    "time": iso_time(m.ts_ns),
                }
                for m in got.marks
            ],
        }

    async def ledger_verify(self) -> Json:
        """The books' self-check: every balance recomputed from the transfers and compared with
        the running balance. ok true when all agree and no invariant is broken; otherwise each
        mismatch (account, field, stored and recomputed values) and each other problem (an
        unbalanced chain, a violated account flag) in a line. Counts the accounts and transfers
        checked."""
        got = await self._up.unary(LEDGER, None, "Verify", lg.VerifyRequest(), lg.VerifyResponse)
        return {
            "ok": got.ok,
            "accounts": got.accounts,
            "transfers": got.transfers,
            "mismatches": [
                {"account_id": m.account_id, "field": m.field, "stored": m.stored, "recomputed": m.recomputed}
                for m in got.mismatches
            ],
            "problems": list(got.problems),
        }

    async def ledger_trace(self, id: str) -> Json:
        """The whole chain of any id from the trading flow (a transfer, fill, order, client
        order, intent, decision or signal id), signal first: signal -> decision -> intent ->
        risk_check (the risk governor's verdict) -> order -> fill -> transfer. `kind` says what
        the id turned out to be; each step has its kind, id, time, a one-line summary and its key
        fields. Steps the mesh did not take (an order placed by hand has no signal) are absent;
        an id no table knows is not found."""
        wanted = id.strip()
        if not wanted or len(wanted) > MAX_ID:
            raise InvalidArgument.field("id", f"must be 1-{MAX_ID} characters, {len(wanted)} given")
        got = await self._up.unary(LEDGER, None, "Trace", lg.TraceRequest(id=wanted), lg.TraceResponse)
        return trace(got)
