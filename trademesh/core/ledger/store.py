"""The ledger in PostgreSQL: accounts, immutable transfers, running balances and the events
posted (trademesh/core/ledger/migrations), written in batches of chains, each batch in one transaction.

post(chains), in one transaction:
1. records the chains' events in ledger_events (INSERT ... ON CONFLICT DO NOTHING RETURNING):
   an event already there is a duplicate, its chain is skipped (a redelivered event posts
   nothing twice, also when two writers race: in event id order, the second waits for the
   first's rows, then skips them);
2. creates the accounts not known yet, each with its zero balance row;
3. checks the chains' POST_PENDING / VOID_PENDING transfers against the pending transfers
   they resolve (in the database or earlier in the batch);
4. COPies the transfers into ledger_transfers;
5. adds the batch's deltas to ledger_balances, one row per account (UPDATE ... FROM unnest),
   where CHECK constraints enforce the accounts' flags once more.
When anything of it is refused (a flag's CHECK, a pending transfer resolved twice, an unknown
account), the transaction rolls back and the chains are posted again one by one, each in its
own transaction, so only the chains that are refused are left out; PostResult says which,
and why. The database checks the batch's end state per account; the engine (trademesh/core/ledger/engine)
checks every chain in order before, so a refusal here means a bug or a second writer.

Balances follow TigerBeetle: a PENDING transfer adds to debits/credits_pending; POST_PENDING
posts exactly its own amount (at most the pending amount) and releases the whole pending
amount; VOID_PENDING (amount 0 or the pending amount) releases it. trademesh/core/ledger/verify.py
recomputes every balance from the transfers the same way.

Errors reaching the database (unreachable, a deadlock, a missing table) are Unavailable naming
the redacted URL; the transaction in progress is rolled back, and posting the same batch again
is safe: whatever had been posted comes back as duplicates.

One writer per database is the design (the ledger service). A second one is safe, not fast:
events are locked in id order, so two writers posting the same events wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from trademesh.core.ledger.engine.model import (
    ZERO,
    Account,
    AccountFlag,
    AccountKey,
    Chain,
    LedgerBalance,
    LedgerId,
    Links,
    Transfer,
    TransferFlag,
)
from trademesh.core.ledger.schema import migrate
from trademesh.core.platform.errors import Corrupt, InvalidArgument, Unavailable
from trademesh.core.platform.logs.redact import redact_url
from trademesh.core.platform.postgres.connect import open_pool

__all__ = [
    "MAX_PAGE_SIZE",
    "PNL_LEDGERS",
    "AccountBalance",
    "LedgerStore",
    "PnlPoint",
    "PostResult",
    "Refusal",
    "TransferPage",
]

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 60.0
MAX_PAGE_SIZE = 1000
# The ledgers whose postings to a strategy's accounts are its realised result.
PNL_LEDGERS = (LedgerId.REALISED_PNL, LedgerId.FEES, LedgerId.FUNDING_PNL)

_DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg_base.InternalClientError,
)
_INT64 = (-(2**63), 2**63 - 1)

_TRANSFER_COLUMNS = (
    "id", "debit_account_id", "credit_account_id", "amount", "ledger", "code", "asset", "ts_ns",
    "flags", "pending_id", "event_id", "fill_id", "order_id", "client_order_id", "intent_id",
    "decision_id", "signal_id", "strategy_id",
)  # fmt: skip
_TRANSFER_TYPES = (
    "text", "text", "text", "numeric", "smallint", "integer", "text", "bigint",
    "integer", "text", "text", "text", "text", "text", "text",
    "text", "text", "text",
)  # fmt: skip
_SELECT_TRANSFER = f"SELECT {', '.join(_TRANSFER_COLUMNS)} FROM ledger_transfers"
_LINK_COLUMNS = (
    "fill_id", "order_id", "client_order_id", "intent_id", "decision_id", "signal_id",
)  # fmt: skip

_RECORD_EVENTS = """
INSERT INTO ledger_events (
    event_id, ts_ns, transfers, fill_id, order_id, client_order_id, intent_id, decision_id, signal_id
)
SELECT * FROM unnest(
    $1::text[], $2::bigint[], $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[]
)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""
_CREATE_ACCOUNTS = """
WITH created AS (
    INSERT INTO ledger_accounts (id, ledger, code, venue, asset, strategy, flags, created_ns, symbol)
    SELECT * FROM unnest(
        $1::text[], $2::smallint[], $3::integer[], $4::text[], $5::text[], $6::text[],
        $7::integer[], $8::bigint[], $9::text[]
    )
    ON CONFLICT (id) DO NOTHING
    RETURNING id, flags, created_ns
)
INSERT INTO ledger_balances (account_id, flags, updated_ns)
SELECT id, flags, created_ns FROM created
"""
_PENDING = """
SELECT p.id, p.debit_account_id, p.credit_account_id, p.amount, p.flags,
       EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id) AS resolved
FROM ledger_transfers p
WHERE p.id = ANY($1::text[])
"""
_INSERT_TRANSFERS = (
    f"INSERT INTO ledger_transfers ({', '.join(_TRANSFER_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(_TRANSFER_TYPES, 1))
    + ")"
)
_INSERT_TRANSFER = (
    f"INSERT INTO ledger_transfers ({', '.join(_TRANSFER_COLUMNS)}) VALUES ("
    + ", ".join(f"${n}" for n in range(1, len(_TRANSFER_COLUMNS) + 1))
    + ")"
)
_APPLY_DELTAS = """
UPDATE ledger_balances AS b SET
    debits_posted = b.debits_posted + d.debits_posted,
    credits_posted = b.credits_posted + d.credits_posted,
    debits_pending = b.debits_pending + d.debits_pending,
    credits_pending = b.credits_pending + d.credits_pending,
    updated_ns = GREATEST(b.updated_ns, d.ts_ns)
FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[], $6::bigint[])
    AS d(account_id, debits_posted, credits_posted, debits_pending, credits_pending, ts_ns)
WHERE b.account_id = d.account_id
"""
_ACCOUNT_BALANCES = """
SELECT a.id, a.ledger, a.code, a.venue, a.asset, a.strategy, a.symbol, a.flags,
       b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending, b.updated_ns
FROM ledger_accounts a LEFT JOIN ledger_balances b ON b.account_id = a.id
"""
_PNL = """
WITH mine AS (
    SELECT id, ledger, asset FROM ledger_accounts
    WHERE strategy = $1 AND ledger = ANY($2::smallint[]) AND ($3::integer[] IS NULL OR code = ANY($3))
      AND ($7::text IS NULL OR venue = $7)
),
moves AS (
    SELECT t.ts_ns, m.ledger, m.asset, t.amount
    FROM mine m JOIN ledger_transfers t ON t.credit_account_id = m.id
    WHERE t.flags IN (0, 2) AND t.ts_ns < $6
    UNION ALL
    SELECT t.ts_ns, m.ledger, m.asset, -t.amount
    FROM mine m JOIN ledger_transfers t ON t.debit_account_id = m.id
    WHERE t.flags IN (0, 2) AND t.ts_ns < $6
),
buckets AS (
    SELECT CASE WHEN ts_ns < $5 THEN NULL ELSE ts_ns - ts_ns % $4 END AS bucket_ns,
           ledger, asset, sum(amount) AS amount
    FROM moves GROUP BY 1, 2, 3
)
SELECT bucket_ns, ledger, asset, amount,
       sum(amount) OVER (PARTITION BY ledger, asset ORDER BY bucket_ns NULLS FIRST) AS cumulative
FROM buckets ORDER BY bucket_ns, ledger, asset
"""

# What a refused constraint means, for the reason a chain is refused with.
_MEANINGS = {
    "ledger_balances_debits_must_not_exceed_credits": "account {key}: debits would exceed credits",
    "ledger_balances_credits_must_not_exceed_debits": "account {key}: credits would exceed debits",
    "ledger_balances_not_negative": "account {key}: a balance would be negative",
    "ledger_transfers_debit_account_id_fkey": "account {key} does not exist",
    "ledger_transfers_credit_account_id_fkey": "account {key} does not exist",
    "ledger_transfers_pending_id_fkey": "pending transfer {key} does not exist",
    "ledger_transfers_resolves_once": "pending transfer {key} is already posted or voided",
    "ledger_transfers_pkey": "transfer {key} exists already (posted by another event)",
}
_FAILING_ROW = re.compile(r"Failing row contains \(([^,)]*)")
_KEY = re.compile(r"Key \([^)]*\)=\(([^)]*)\)")


@dataclass(frozen=True)
class Refusal:
    """A chain the ledger did not post, and why; nothing of it was kept."""

    event_id: str
    reason: str


@dataclass(frozen=True)
class PostResult:
    """What post() did with each chain: posted now, posted before (its event is recorded:
    nothing posted twice), or refused."""

    posted: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    refused: tuple[Refusal, ...] = ()
    transfers: int = 0  # transfers inserted


@dataclass(frozen=True)
class AccountBalance:
    account: Account
    balance: LedgerBalance
    updated_ns: int


@dataclass(frozen=True)
class TransferPage:
    transfers: tuple[Transfer, ...]
    next_page_token: str = ""  # "" on the last page


@dataclass(frozen=True)
class PnlPoint:
    """One bucket of a strategy's realised result on one ledger and asset: the net credit to
    the strategy's accounts in the bucket (a gain credits a PnL account; a fee debits an
    expense account, so it counts negative) and the running total since the first transfer."""

    bucket_ns: int
    ledger: LedgerId
    asset: str
    amount: Decimal
    cumulative: Decimal


class _Refused(Exception):
    """A chain refused by the store's own checks (pending transfers), before the database."""

    def __init__(self, event_id: str, reason: str) -> None:
        super().__init__(reason)
        self.event_id = event_id
        self.reason = reason


_REFUSED = (
    _Refused,
    asyncpg.IntegrityConstraintViolationError,  # 23: CHECK, FOREIGN KEY, UNIQUE
    asyncpg.DataError,  # 22: a value out of range
    asyncpg_base.DataError,  # a value the column's type cannot hold, found before sending
    OverflowError,  # COPY's encoder: an integer past its column
)


@dataclass(frozen=True)
class _Pending:
    debit_account_id: str
    credit_account_id: str
    amount: Decimal
    flags: int
    resolved: bool


@dataclass(frozen=True)
class _Work:
    rows: list[tuple[Any, ...]]
    accounts: dict[str, tuple[Account, int]]  # to create: id -> (account, ts of its first chain)
    deltas: dict[str, list[Any]] | None  # None: wait for the pending transfers resolved


@dataclass
class _Outcome:
    posted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    transfers: int = 0


class LedgerStore:
    """The ledger's tables through an asyncpg pool. `transfer_insert` is how transfers go in:
    "copy" (COPY, the fastest: bench/ledger_post.py), "unnest" (one INSERT of arrays) or
    "executemany"."""

    def __init__(self, pool: Any, url: str = "", transfer_insert: str = "copy") -> None:
        if transfer_insert not in ("copy", "unnest", "executemany"):
            raise ValueError(f"unknown transfer_insert {transfer_insert!r}")
        self._pool = pool
        self._url = url
        self._insert = transfer_insert
        # Accounts known to exist with their balance row (committed): not created again.
        self._known: set[str] = set()

    @classmethod
    async def open(cls, database_url: str, size: int = 2, transfer_insert: str = "copy") -> LedgerStore:
        """Connected, with the schema in place; Unavailable when the database cannot be reached."""
        with _mapped(database_url):
            pool = await open_pool(
                database_url,
                max_size=size,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                statement_timeout_s=STATEMENT_TIMEOUT_S,
                application="ledger",
            )
        store = cls(pool, database_url, transfer_insert)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    @property
    def pool(self) -> Any:
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> list[str]:
        """Applies the pending migrations; their labels (none when up to date)."""
        with _mapped(self._url):
            async with self._pool.acquire() as conn:
                return [m.label for m in await migrate(conn)]

    # ---- posting

    async def post(self, chains: Sequence[Chain]) -> PostResult:
        """Posts the chains in one transaction (module docstring); a chain refused by the
        database is left out with its reason, the others posted one by one then."""
        outcome = _Outcome()
        ready: list[Chain] = []
        seen: set[str] = set()
        ids = _AccountIds()
        keys = {ids(account): account.key for chain in chains for account in chain.accounts}
        for chain in chains:
            if chain.event_id in seen:
                outcome.duplicates.append(chain.event_id)
                continue
            seen.add(chain.event_id)
            reason = _malformed(chain, keys)
            if reason:
                outcome.refused.append(Refusal(chain.event_id, reason))
            else:
                ready.append(chain)
        if ready:
            with _mapped(self._url):
                async with self._connection() as conn:
                    try:
                        await self._post_together(conn, ready, outcome, ids)
                    except _REFUSED:
                        await self._post_one_by_one(conn, ready, outcome, ids)
        return PostResult(
            tuple(outcome.posted), tuple(outcome.duplicates), tuple(outcome.refused), outcome.transfers
        )

    async def _post_together(
        self, conn: Any, chains: Sequence[Chain], outcome: _Outcome, ids: _AccountIds
    ) -> None:
        async with conn.transaction():
            posted, duplicates, transfers = await self._post_in(conn, chains, ids)
        self._settle(posted)
        outcome.posted += [chain.event_id for chain in posted]
        outcome.duplicates += duplicates
        outcome.transfers += transfers

    async def _post_one_by_one(
        self, conn: Any, chains: Sequence[Chain], outcome: _Outcome, ids: _AccountIds
    ) -> None:
        for chain in chains:
            try:
                await self._post_together(conn, [chain], outcome, ids)
            except _REFUSED as exc:
                outcome.refused.append(Refusal(chain.event_id, _reason(exc)))

    async def _post_in(
        self, conn: Any, chains: Sequence[Chain], ids: _AccountIds
    ) -> tuple[list[Chain], list[str], int]:
        """Within the caller's transaction: (chains posted, events already posted, transfers).
        While PostgreSQL records the events, Python prepares the rows as if none was a duplicate
        (the usual case), so the two work at the same time instead of in turn."""
        ordered = sorted(chains, key=lambda chain: chain.event_id)  # two writers lock alike
        recording = asyncio.ensure_future(
            conn.fetch(
                _RECORD_EVENTS,
                [chain.event_id for chain in ordered],
                [chain.ts_ns for chain in ordered],
                [len(chain.transfers) for chain in ordered],
                *_event_links(ordered),
            )
        )
        await asyncio.sleep(0)  # lets it send the INSERT
        try:
            work = self._prepare(chains, ids)
        finally:
            new = {row["event_id"] for row in await recording}
        fresh = [chain for chain in chains if chain.event_id in new]
        duplicates = [chain.event_id for chain in chains if chain.event_id not in new]
        if len(fresh) < len(chains):
            work = self._prepare(fresh, ids)
        if not work.rows:
            return fresh, duplicates, 0
        if work.accounts:
            await _create_accounts(conn, work.accounts)
        deltas = work.deltas if work.deltas is not None else _deltas(fresh, await _pending_of(conn, fresh))
        await self._insert_transfers(conn, work.rows)
        await _apply(conn, deltas)
        return fresh, duplicates, len(work.rows)

    def _prepare(self, chains: Sequence[Chain], ids: _AccountIds) -> _Work:
        """The chains' transfer rows, the accounts to create, and the balance deltas unless a
        transfer resolves a pending one (those need the pending transfers read first)."""
        accounts: dict[str, tuple[Account, int]] = {}
        resolves = False
        for chain in chains:
            for account in chain.accounts:
                key = ids(account)
                if key not in self._known and key not in accounts:
                    accounts[key] = (account, chain.ts_ns)
            resolves = resolves or any(t.pending_id for t in chain.transfers)
        rows = [_transfer_row(t) for chain in chains for t in chain.transfers]
        return _Work(rows, accounts, None if resolves else _deltas(chains, {}))

    async def _insert_transfers(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        if self._insert == "copy":
            await conn.copy_records_to_table("ledger_transfers", records=rows, columns=_TRANSFER_COLUMNS)
        elif self._insert == "unnest":
            await conn.execute(_INSERT_TRANSFERS, *(list(column) for column in zip(*rows, strict=True)))
        else:
            await conn.executemany(_INSERT_TRANSFER, rows)

    def _settle(self, posted: Iterable[Chain]) -> None:
        """After COMMIT: the accounts the chains touched exist, with their balance rows."""
        for chain in posted:
            for transfer in chain.transfers:
                self._known.add(transfer.debit_account_id)
                self._known.add(transfer.credit_account_id)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn:
            try:
                yield conn
            except BaseException as exc:
                if not isinstance(exc, _REFUSED):  # else it is rolled back and fine
                    _discard(conn)
                raise

    # ---- reading

    async def load(self) -> tuple[dict[str, Account], dict[str, LedgerBalance]]:
        """Every account and its balance, by account id: what the engine starts from."""
        with _mapped(self._url):
            rows = await self._pool.fetch(_ACCOUNT_BALANCES)
        accounts = {row["id"]: _account(row) for row in rows}
        balances = {row["id"]: _balance(row) for row in rows}
        self._known.update(row["id"] for row in rows if row["updated_ns"] is not None)
        return accounts, balances

    async def open_pending(self) -> list[Transfer]:
        """The PENDING transfers neither posted nor voided yet, oldest first."""
        with _mapped(self._url):
            rows = await self._pool.fetch(
                f"{_SELECT_TRANSFER} p WHERE flags = 1 AND NOT EXISTS"
                " (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id) ORDER BY ts_ns, id"
            )
        return [_transfer(row) for row in rows]

    async def posted_any(self) -> bool:
        """Whether anything was ever posted (false: the books' first start)."""
        with _mapped(self._url):
            return bool(await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM ledger_events)"))

    async def posted(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these events are posted."""
        with _mapped(self._url):
            rows = await self._pool.fetch(
                "SELECT event_id FROM ledger_events WHERE event_id = ANY($1::text[])", list(event_ids)
            )
        return {row["event_id"] for row in rows}

    async def list_transfers(
        self,
        *,
        account_id: str | None = None,
        strategy_id: str | None = None,
        event_id: str | None = None,
        venue: str | None = None,
        ledger: LedgerId | None = None,
        asset: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        page_size: int = 100,
        page_token: str = "",
        newest_first: bool = False,
    ) -> TransferPage:
        """Transfers matching every filter given, by time then id (or the reverse); `since_ns`
        inclusive, `until_ns` exclusive. Pass the page's next_page_token for the next page."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument.field("page_size", f"must be 1 to {MAX_PAGE_SIZE}, got {page_size}")
        where = _Where()
        if account_id is not None:
            where.add("(debit_account_id = {} OR credit_account_id = {})", account_id, account_id)
        if strategy_id is not None:
            where.add("strategy_id = {}", strategy_id)
        if event_id is not None:
            where.add("event_id = {}", event_id)
        if venue is not None:
            where.add("debit_account_id IN (SELECT id FROM ledger_accounts WHERE venue = {})", venue)
        if ledger is not None:
            where.add("ledger = {}", int(ledger))
        if asset is not None:
            where.add("asset = {}", asset)
        if since_ns is not None:
            where.add("ts_ns >= {}", since_ns)
        if until_ns is not None:
            where.add("ts_ns < {}", until_ns)
        if page_token:
            after_ns, after_id = _parse_token(page_token)
            where.add(f"(ts_ns, id) {'<' if newest_first else '>'} ({{}}, {{}})", after_ns, after_id)
        order = "ts_ns DESC, id DESC" if newest_first else "ts_ns, id"
        sql = f"{_SELECT_TRANSFER}{where.sql} ORDER BY {order} LIMIT {page_size + 1}"
        with _mapped(self._url):
            rows = await self._pool.fetch(sql, *where.args)
        transfers = tuple(_transfer(row) for row in rows[:page_size])
        more = len(rows) > page_size
        token = f"{transfers[-1].ts_ns}:{transfers[-1].id}" if more else ""
        return TransferPage(transfers, token)

    async def fill_transfers(self, strategy: str = "", until_ns: int = _INT64[1]) -> list[Transfer]:
        """The posted transfers of fills (of one strategy, or "" all) up to `until_ns`, by time,
        each event's together: what the round trips are read from (trademesh.core.ledger.engine.trips)."""
        sql = (
            f"{_SELECT_TRANSFER} WHERE fill_id <> '' AND flags = 0 AND ts_ns <= $1"
            " AND ($2::text = '' OR strategy_id = $2) ORDER BY ts_ns, event_id, id"
        )
        with _mapped(self._url):
            rows = await self._pool.fetch(sql, until_ns, strategy)
        return [_transfer(row) for row in rows]

    async def balances(
        self,
        *,
        venue: str | None = None,
        asset: str | None = None,
        strategy: str | None = None,
        ledger: LedgerId | None = None,
    ) -> list[AccountBalance]:
        """Accounts matching every filter given, with their balances, by ledger, code, venue,
        asset and strategy (strategy "" is the accounts not kept per strategy)."""
        where = _Where()
        for column, value in (("a.venue", venue), ("a.asset", asset), ("a.strategy", strategy)):
            if value is not None:
                where.add(f"{column} = {{}}", value)
        if ledger is not None:
            where.add("a.ledger = {}", int(ledger))
        sql = f"{_ACCOUNT_BALANCES}{where.sql} ORDER BY a.ledger, a.code, a.venue, a.asset, a.strategy"
        with _mapped(self._url):
            rows = await self._pool.fetch(sql, *where.args)
        return [AccountBalance(_account(row), _balance(row), row["updated_ns"] or 0) for row in rows]

    async def transfers_by_link(self, link: str) -> list[Transfer]:
        """The transfers whose id, event, fill, order, client order, intent, decision or
        signal id is `link`, by time: everything one id traces to."""
        if not link:
            return []
        matches = " OR ".join(f"({column} = $1 AND {column} <> '')" for column in _LINK_COLUMNS)
        events = f"SELECT event_id FROM ledger_events WHERE event_id = $1 OR {matches}"
        sql = f"{_SELECT_TRANSFER} WHERE id = $1 OR event_id IN ({events}) ORDER BY ts_ns, id"
        with _mapped(self._url):
            rows = await self._pool.fetch(sql, link)
        return [_transfer(row) for row in rows]

    async def pnl_series(
        self,
        strategy: str,
        bucket_ns: int,
        *,
        ledgers: Sequence[LedgerId] = PNL_LEDGERS,
        codes: Sequence[int] | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        venue: str | None = None,
    ) -> list[PnlPoint]:
        """The strategy's realised result per bucket of `bucket_ns` (aligned on multiples of
        it), per ledger and asset: the net credit of the posted transfers to its accounts on
        `ledgers` (only those with one of `codes`, when given). The cumulative column counts
        from the first transfer, also when `since_ns` starts the series later; `until_ns` is
        exclusive. Summed over ledgers per asset, it is the realised part of the equity curve."""
        if bucket_ns <= 0:
            raise InvalidArgument.field("bucket_ns", f"must be positive, got {bucket_ns}")
        with _mapped(self._url):
            rows = await self._pool.fetch(
                _PNL,
                strategy,
                [int(ledger) for ledger in ledgers],
                None if codes is None else list(codes),
                bucket_ns,
                _INT64[0] if since_ns is None else since_ns,
                _INT64[1] if until_ns is None else until_ns,
                venue,
            )
        return [
            PnlPoint(
                row["bucket_ns"], LedgerId(row["ledger"]), row["asset"], row["amount"], row["cumulative"]
            )
            for row in rows
            if row["bucket_ns"] is not None
        ]


# ---- checks and rows


def _malformed(chain: Chain, keys: dict[str, AccountKey]) -> str:
    """Why the chain cannot be posted whatever the database holds, or "". `keys`: the batch's
    accounts by id (an id is its key's: any chain's account says what that id is)."""
    ids: set[str] = set()
    for transfer in chain.transfers:
        if transfer.id in ids:
            return f"transfer {transfer.id} appears twice in the chain"
        ids.add(transfer.id)
        if transfer.links.event_id != chain.event_id:
            return f"transfer {transfer.id} links event {transfer.links.event_id!r}, not its chain's"
        for account_id in (transfer.debit_account_id, transfer.credit_account_id):
            key = keys.get(account_id)
            if key is not None and (key.ledger != transfer.ledger or key.asset != transfer.asset):
                return (
                    f"transfer {transfer.id} on ledger {int(transfer.ledger)} in {transfer.asset} touches"
                    f" account {account_id} of ledger {int(key.ledger)} in {key.asset}"
                )
    return ""


async def _create_accounts(conn: Any, accounts: dict[str, tuple[Account, int]]) -> None:
    """Creates the accounts (those that exist stay as they are), each with its zero balance."""
    ordered = [accounts[key] for key in sorted(accounts)]
    await conn.execute(
        _CREATE_ACCOUNTS,
        sorted(accounts),
        [int(a.key.ledger) for a, _ in ordered],
        [a.key.code for a, _ in ordered],
        [a.key.venue for a, _ in ordered],
        [a.key.asset for a, _ in ordered],
        [a.key.strategy for a, _ in ordered],
        [int(a.flags) for a, _ in ordered],
        [ts for _, ts in ordered],
        [a.key.symbol for a, _ in ordered],
    )


async def _pending_of(conn: Any, chains: Sequence[Chain]) -> dict[str, _Pending]:
    """The pending transfers the chains resolve that are already in the database."""
    inside = {t.id for chain in chains for t in chain.transfers}
    resolving = [t.pending_id for chain in chains for t in chain.transfers if t.pending_id]
    wanted = [pending_id for pending_id in resolving if pending_id not in inside]
    if not wanted:
        return {}
    rows = await conn.fetch(_PENDING, wanted)
    return {
        row["id"]: _Pending(
            row["debit_account_id"], row["credit_account_id"], row["amount"], row["flags"], row["resolved"]
        )
        for row in rows
    }


def _deltas(chains: Sequence[Chain], pending: dict[str, _Pending]) -> dict[str, list[Any]]:
    """Each account's balance change over the chains, in order, as [debits_posted,
    credits_posted, debits_pending, credits_pending, latest ts_ns]; _Refused at the first
    transfer that resolves a pending transfer wrongly. (Lists and one loop: it runs per transfer.)"""
    deltas: dict[str, list[Any]] = {}
    for chain in chains:
        ts = chain.ts_ns
        for t in chain.transfers:
            debit = deltas.get(t.debit_account_id)
            if debit is None:
                debit = deltas[t.debit_account_id] = [ZERO, ZERO, ZERO, ZERO, ts]
            credit = deltas.get(t.credit_account_id)
            if credit is None:
                credit = deltas[t.credit_account_id] = [ZERO, ZERO, ZERO, ZERO, ts]
            if ts > debit[4]:
                debit[4] = ts
            if ts > credit[4]:
                credit[4] = ts
            flags, amount = t.flags, t.amount
            if flags == 0:
                debit[0] += amount
                credit[1] += amount
            elif flags == TransferFlag.PENDING:
                debit[2] += amount
                credit[3] += amount
                pending[t.id] = _Pending(t.debit_account_id, t.credit_account_id, amount, 1, False)
            else:
                held = _resolving(chain.event_id, t, pending.get(t.pending_id))
                pending[t.pending_id] = _Pending(
                    held.debit_account_id, held.credit_account_id, held.amount, held.flags, True
                )
                debit[2] -= held.amount
                credit[3] -= held.amount
                if flags == TransferFlag.POST_PENDING:
                    debit[0] += amount
                    credit[1] += amount
    return deltas


def _resolving(event_id: str, t: Transfer, held: _Pending | None) -> _Pending:
    """The pending transfer `t` posts or voids, when `t` may: else _Refused."""
    what = f"transfer {t.id} resolves pending transfer {t.pending_id}"
    if held is None:
        raise _Refused(event_id, f"{what}, which does not exist")
    if held.flags != TransferFlag.PENDING:
        raise _Refused(event_id, f"{what}, which is not pending")
    if held.resolved:
        raise _Refused(event_id, f"{what}, which is already posted or voided")
    if (held.debit_account_id, held.credit_account_id) != (t.debit_account_id, t.credit_account_id):
        raise _Refused(event_id, f"{what}, which moves between other accounts")
    if t.flags == TransferFlag.POST_PENDING and t.amount > held.amount:
        raise _Refused(event_id, f"{what}: posts {t.amount}, more than the {held.amount} pending")
    if t.flags == TransferFlag.VOID_PENDING and t.amount not in (ZERO, held.amount):
        raise _Refused(event_id, f"{what}: a void's amount is 0 or the {held.amount} pending, not {t.amount}")
    return held


async def _apply(conn: Any, deltas: dict[str, list[Any]]) -> None:
    ids = sorted(deltas)  # a fixed order: two writers lock the rows alike
    changes = [deltas[key] for key in ids]
    status = await conn.execute(_APPLY_DELTAS, ids, *(list(column) for column in zip(*changes, strict=True)))
    updated = int(status.rsplit(" ", 1)[-1])
    if updated != len(ids):
        raise Corrupt(f"ledger_balances lacks {len(ids) - updated} row(s) of existing accounts: run verify")


class _AccountIds:
    """Account ids for one post(): by account object first (the engine passes the same objects
    again and again), then by key (an AccountKey's hash is itself not free)."""

    def __init__(self) -> None:
        self._by_object: dict[int, str] = {}  # the chains hold the objects for the whole call

    def __call__(self, account: Account) -> str:
        found = self._by_object.get(id(account))
        if found is None:
            found = self._by_object[id(account)] = _id_of(account.key)
        return found


@functools.lru_cache(maxsize=1 << 16)
def _id_of(key: AccountKey) -> str:
    """The account's id (a uuid5, worth keeping: a batch names the same accounts many times)."""
    return key.id


def _event_links(chains: Sequence[Chain]) -> list[list[str]]:
    """Per link column, each chain's value (its transfers share them but for the strategy)."""
    firsts = [chain.transfers[0].links if chain.transfers else None for chain in chains]
    return [[getattr(links, column) if links else "" for links in firsts] for column in _LINK_COLUMNS]


def _transfer_row(t: Transfer) -> tuple[Any, ...]:
    links = t.links
    return (
        t.id, t.debit_account_id, t.credit_account_id, t.amount, int(t.ledger), t.code, t.asset, t.ts_ns,
        int(t.flags), t.pending_id or None, links.event_id, links.fill_id, links.order_id,
        links.client_order_id, links.intent_id, links.decision_id, links.signal_id, links.strategy_id,
    )  # fmt: skip


def _transfer(row: Any) -> Transfer:
    links = Links(
        row["event_id"],
        row["fill_id"],
        row["order_id"],
        row["client_order_id"],
        row["intent_id"],
        row["decision_id"],
        row["signal_id"],
        row["strategy_id"],
    )
    return Transfer(
        row["id"],
        row["debit_account_id"],
        row["credit_account_id"],
        row["amount"],
        LedgerId(row["ledger"]),
        row["code"],
        row["asset"],
        row["ts_ns"],
        links,
        TransferFlag(row["flags"]),
        row["pending_id"] or "",
    )


def _account(row: Any) -> Account:
    key = AccountKey(
        LedgerId(row["ledger"]), row["code"], row["venue"], row["asset"], row["strategy"], row["symbol"]
    )
    return Account(key, AccountFlag(row["flags"]))


def _balance(row: Any) -> LedgerBalance:
    if row["updated_ns"] is None:  # an account without its balance row: verify reports it
        return LedgerBalance(flags=AccountFlag(row["flags"]))
    return LedgerBalance(
        row["debits_posted"],
        row["credits_posted"],
        row["debits_pending"],
        row["credits_pending"],
        AccountFlag(row["flags"]),
    )


class _Where:
    """A WHERE clause built from conditions with {} for each argument."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, *args: Any) -> None:
        numbers = [f"${len(self.args) + n}" for n in range(1, len(args) + 1)]
        self.parts.append(condition.format(*numbers))
        self.args += args

    @property
    def sql(self) -> str:
        return f" WHERE {' AND '.join(self.parts)}" if self.parts else ""


def _parse_token(token: str) -> tuple[int, str]:
    ts, _, transfer = token.partition(":")
    try:
        ts_ns = int(ts)
    except ValueError:
        ts_ns = None
    if ts_ns is None or not transfer or not _INT64[0] <= ts_ns <= _INT64[1]:
        raise InvalidArgument.field("page_token", f"{token[:80]!r} is not one this store gave")
    return ts_ns, transfer


def _reason(exc: BaseException) -> str:
    """Why the database (or the store's own check) refused a chain, in words."""
    if isinstance(exc, _Refused):
        return exc.reason
    constraint = getattr(exc, "constraint_name", None) or ""
    detail = getattr(exc, "detail", None) or ""
    meaning = _MEANINGS.get(constraint)
    if meaning is not None:
        found = _KEY.search(detail) or _FAILING_ROW.search(detail)
        return meaning.format(key=found.group(1) if found else "?")
    text = str(exc) or type(exc).__name__
    return f"{text} ({detail})" if detail else text


@contextlib.contextmanager
def _mapped(url: str) -> Iterator[None]:
    """Database and network errors as Unavailable, naming the redacted URL."""
    try:
        yield
    except _DATABASE_ERRORS as exc:
        text = (str(exc) or type(exc).__name__).replace(url, redact_url(url)) if url else str(exc)
        where = f" at {redact_url(url)}" if url else ""
        raise Unavailable(f"PostgreSQL{where}: {text or type(exc).__name__}") from exc


def _discard(conn: Any) -> None:
    """Closes a connection that may be broken (or mid-statement), so the pool makes a new one."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()
