"""The ledger's store against a real PostgreSQL: migrations, posting (balances, events, links),
idempotency, a batch with one refused chain, pending transfers posted and voided, immutable
history, the queries (pages, links, balances, the PnL series), verify (passing, and finding a
tampered balance), and a poster killed with SIGKILL in the middle of a batch.

Chains are built by hand here (the engine that makes them from events is tested on its own).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.integration import ledger_poster
from tests.integration.postgres_server import database_url, fresh_database
from trademesh.core.ledger.engine.model import (
    Account,
    AccountFlag,
    AccountKey,
    Chain,
    LedgerBalance,
    LedgerId,
    Links,
    Transfer,
    TransferFlag,
    transfer_id,
)
from trademesh.core.ledger.schema import MIGRATIONS, SCHEMA_LOCK, migrate
from trademesh.core.ledger.store import LedgerStore, PostResult
from trademesh.core.ledger.verify import BalanceMismatch, verify
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, Unavailable
from trademesh.core.platform.postgres.migrations import load_migrations

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_790_000_000_000_000_000
D = Decimal
DEBITS_LIMITED = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS


# ---- builders


def account(code: int, strategy: str = "", flags: AccountFlag = AccountFlag.NONE, **key: Any) -> Account:
    ledger = key.get("ledger", LedgerId.CASH)
    return Account(
        AccountKey(ledger, code, key.get("venue", "sim"), key.get("asset", "USDT"), strategy), flags
    )


OUTSIDE = account(100)  # where deposits come from
CASH = account(1, "s1", DEBITS_LIMITED)  # the strategy's cash: never negative
FEES = account(30)  # the venue's fee income
PNL_S1 = account(40, "s1", ledger=LedgerId.REALISED_PNL)
PNL_VENUE = account(41, ledger=LedgerId.REALISED_PNL)
FEE_S1 = account(31, "s1", ledger=LedgerId.FEES)
FEE_VENUE = account(32, ledger=LedgerId.FEES)
FUNDING_S1 = account(50, "s1", ledger=LedgerId.FUNDING_PNL)
FUNDING_VENUE = account(51, ledger=LedgerId.FUNDING_PNL)


def move(
    debit: Account,
    credit: Account,
    amount: str,
    flags: TransferFlag = TransferFlag.NONE,
    pending_id: str = "",
    links: dict[str, str] | None = None,
) -> tuple[Account, Account, Decimal, TransferFlag, str, dict[str, str]]:
    return debit, credit, D(amount), flags, pending_id, links or {}


def chain(
    event_id: str, at: int, *moves: tuple[Account, Account, Decimal, TransferFlag, str, dict[str, str]]
) -> Chain:
    transfers = tuple(
        Transfer(
            transfer_id(event_id, n),
            debit.id,
            credit.id,
            amount,
            debit.key.ledger,
            1,
            debit.key.asset,
            T0 + at,
            Links(event_id, **links),
            flags,
            pending_id,
        )
        for n, (debit, credit, amount, flags, pending_id, links) in enumerate(moves)
    )
    accounts = {a.id: a for debit, credit, *_ in moves for a in (debit, credit)}
    return Chain(event_id, T0 + at, transfers, tuple(accounts.values()))


def deposit(event_id: str, amount: str, at: int = 0) -> Chain:
    return chain(event_id, at, move(OUTSIDE, CASH, amount))


def spend(event_id: str, amount: str, at: int = 1, **links: str) -> Chain:
    return chain(event_id, at, move(CASH, FEES, amount, links=links))


async def balance_of(store: LedgerStore, acc: Account) -> LedgerBalance:
    _, balances = await store.load()
    return balances[acc.id]


async def count(store: LedgerStore, table: str) -> int:
    return int(await store.pool.fetchval(f"SELECT count(*) FROM {table}"))


# ---- fixtures


@pytest.fixture
async def store(fresh_database: str) -> AsyncIterator[LedgerStore]:
    opened = await LedgerStore.open(fresh_database)
    try:
        yield opened
    finally:
        await opened.close()


# ---- migrations


async def test_migrations_apply_once_in_their_own_table_and_lock(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        conns = [conn, *[await asyncpg.connect(fresh_database) for _ in range(2)]]
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        wanted = len(load_migrations(MIGRATIONS))
        assert sorted(len(done) for done in applied) == [0, 0, wanted]
        assert await conn.fetchval("SELECT count(*) FROM ledger_schema_migrations") == wanted
        tables = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'ledger_%'"
            )
        }
        assert tables == {
            "ledger_accounts",
            "ledger_transfers",
            "ledger_balances",
            "ledger_events",
            "ledger_orders",
            "ledger_cursors",
            "ledger_schema_migrations",
        }
        for other in conns[1:]:
            await other.close()
    finally:
        await conn.close()
    # The lock differs from every other set's (trademesh/core/*, trademesh/gateway/*).
    assert SCHEMA_LOCK not in (
        0x74_6D_72_65_63_6D,
        0x74_6D_72_65_63_70,
        0x74_6D_64_65_74_70,
        0x74_6D_67_61_75_74,
    )


async def test_an_edited_migration_stops_the_ledger(fresh_database: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await migrate(conn)
        source = ROOT / "trademesh/core/ledger/migrations/001_ledger.sql"
        (tmp_path / "001_ledger.sql").write_text(source.read_text() + "\n-- edited\n")
        with pytest.raises(
            FailedPrecondition, match="ledger: migration 001_ledger changed after it was applied"
        ):
            await migrate(conn, tmp_path)
    finally:
        await conn.close()


async def test_an_unreachable_database_is_unavailable_naming_it_without_the_password() -> None:
    with pytest.raises(Unavailable) as caught:
        await LedgerStore.open("postgresql://ledger:s3cret@127.0.0.1:1/ledger")
    assert "127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)


# ---- posting


async def test_a_batch_posts_transfers_balances_events_and_accounts(store: LedgerStore) -> None:
    result = await store.post(
        [deposit("dep-1", "1000.50"), spend("fee-1", "0.25", fill_id="f1", order_id="o1", strategy_id="s1")]
    )
    assert result == PostResult(posted=("dep-1", "fee-1"), transfers=2)
    accounts, balances = await store.load()
    assert set(accounts) == {OUTSIDE.id, CASH.id, FEES.id}
    assert accounts[CASH.id] == CASH  # key and flags come back as they went in
    assert balances[CASH.id] == LedgerBalance(D("0.25"), D("1000.50"), D(0), D(0), DEBITS_LIMITED)
    assert balances[OUTSIDE.id].debits_posted == D("1000.50")
    assert balances[FEES.id].credits_posted == D("0.25")
    assert await store.posted(["dep-1", "fee-1", "other"]) == {"dep-1", "fee-1"}
    rows = await store.pool.fetch("SELECT event_id, transfers, ts_ns FROM ledger_events ORDER BY event_id")
    assert [(r["event_id"], r["transfers"], r["ts_ns"]) for r in rows] == [
        ("dep-1", 1, T0),
        ("fee-1", 1, T0 + 1),
    ]
    (fee,) = await store.transfers_by_link("o1")
    assert fee == spend("fee-1", "0.25", fill_id="f1", order_id="o1", strategy_id="s1").transfers[0]
    assert fee.amount.as_tuple() == D("0.25").as_tuple()  # exact, scale kept


async def test_the_same_events_again_post_nothing_twice(store: LedgerStore) -> None:
    first = await store.post([deposit("dep-1", "100"), spend("fee-1", "1")])
    again = await store.post([spend("fee-1", "1"), spend("fee-2", "2"), spend("fee-2", "2")])
    assert first.posted == ("dep-1", "fee-1")
    assert again == PostResult(posted=("fee-2",), duplicates=("fee-2", "fee-1"), transfers=1)
    assert await count(store, "ledger_transfers") == 3
    assert (await balance_of(store, CASH)).debits_posted == D(3)
    assert (await verify(store.pool)).ok


async def test_two_writers_racing_post_each_event_once(store: LedgerStore, fresh_database: str) -> None:
    other = await LedgerStore.open(fresh_database)
    try:
        await store.post([deposit("dep-1", "1000000")])
        chains = [spend(f"fee-{n}", "1", at=n) for n in range(200)]
        results = await asyncio.gather(store.post(chains), other.post(list(reversed(chains))))
    finally:
        await other.close()
    posted = [e for r in results for e in r.posted]
    assert sorted(posted) == sorted(c.event_id for c in chains)  # each once, by one writer or the other
    assert not any(r.refused for r in results)
    assert (await balance_of(store, CASH)).debits_posted == D(200)
    assert (await verify(store.pool)).ok


async def test_a_refused_chain_is_left_out_with_its_reason_and_the_rest_posted(store: LedgerStore) -> None:
    await store.post([deposit("dep-1", "100")])
    result = await store.post([spend("a", "30"), spend("b", "500"), spend("c", "20"), spend("d", "50.01")])
    assert result.posted == ("a", "c")
    assert [(r.event_id, r.reason) for r in result.refused] == [
        ("b", f"account {CASH.id}: debits would exceed credits"),
        ("d", f"account {CASH.id}: debits would exceed credits"),
    ]
    assert await store.posted(["a", "b", "c", "d"]) == {"a", "c"}
    assert await balance_of(store, CASH) == LedgerBalance(D(50), D(100), D(0), D(0), DEBITS_LIMITED)
    assert (await verify(store.pool)).ok


async def test_chains_that_cannot_be_posted_are_refused_before_the_database(store: LedgerStore) -> None:
    crossed = chain("crossed", 1, move(CASH, account(2, ledger=LedgerId.POSITION, asset="BTC"), "1"))
    stranger = Chain("stranger", T0, (spend("other", "1").transfers[0],), (CASH, FEES))
    unknown = Transfer(
        transfer_id("ghost", 0), CASH.id, "nosuchaccount", D(1), LedgerId.CASH, 1, "USDT", T0, Links("ghost")
    )
    result = await store.post(
        [deposit("dep", "10"), crossed, stranger, Chain("ghost", T0, (unknown,), (CASH,))]
    )
    assert result.posted == ("dep",)
    reasons = {r.event_id: r.reason for r in result.refused}
    assert "touches account" in reasons["crossed"] and "of ledger 2 in BTC" in reasons["crossed"]
    assert "links event 'other', not its chain's" in reasons["stranger"]
    assert reasons["ghost"] == "account nosuchaccount does not exist"
    assert await count(store, "ledger_transfers") == 1


async def test_pending_then_post_and_void(store: LedgerStore) -> None:
    await store.post([deposit("dep", "100")])
    hold = chain("hold", 1, move(CASH, FEES, "40", TransferFlag.PENDING))
    hold_id = hold.transfers[0].id
    assert (await store.post([hold])).posted == ("hold",)
    assert await balance_of(store, CASH) == LedgerBalance(D(0), D(100), D(40), D(0), DEBITS_LIMITED)
    # The reservation counts: 70 more would take debits (40 pending + 70) past credits (100).
    refused = await store.post([spend("too-much", "70", at=2)])
    assert refused.refused[0].reason == f"account {CASH.id}: debits would exceed credits"
    # Post 25 of the 40: 25 posted, the whole 40 released.
    settle = chain("settle", 3, move(CASH, FEES, "25", TransferFlag.POST_PENDING, hold_id))
    assert (await store.post([settle])).posted == ("settle",)
    assert await balance_of(store, CASH) == LedgerBalance(D(25), D(100), D(0), D(0), DEBITS_LIMITED)
    assert (await balance_of(store, FEES)).credits_posted == D(25)
    # Resolved once only: a second post or a void of it is refused, naming why.
    twice = await store.post([chain("again", 4, move(CASH, FEES, "1", TransferFlag.POST_PENDING, hold_id))])
    assert (
        twice.refused[0].reason == f"transfer {transfer_id('again', 0)} resolves pending transfer {hold_id},"
        " which is already posted or voided"
    )
    # A second hold, voided; and a third posted within the same batch that made it.
    hold2 = chain("hold2", 5, move(CASH, FEES, "10", TransferFlag.PENDING))
    void = chain("void2", 6, move(CASH, FEES, "0", TransferFlag.VOID_PENDING, hold2.transfers[0].id))
    hold3 = chain("hold3", 7, move(CASH, FEES, "5", TransferFlag.PENDING))
    post3 = chain("post3", 8, move(CASH, FEES, "5", TransferFlag.POST_PENDING, hold3.transfers[0].id))
    result = await store.post([hold2, void, hold3, post3])
    assert result.posted == ("hold2", "void2", "hold3", "post3") and not result.refused
    assert await balance_of(store, CASH) == LedgerBalance(D(30), D(100), D(0), D(0), DEBITS_LIMITED)
    assert await store.open_pending() == []
    assert (await verify(store.pool)).ok


async def test_a_post_must_fit_its_pending_transfer(store: LedgerStore) -> None:
    await store.post([deposit("dep", "100")])
    hold = chain("hold", 1, move(CASH, FEES, "40", TransferFlag.PENDING))
    hold_id = hold.transfers[0].id
    plain = spend("plain", "1", at=2)
    await store.post([hold, plain])
    result = await store.post(
        [
            chain("over", 3, move(CASH, FEES, "40.01", TransferFlag.POST_PENDING, hold_id)),
            chain("elsewhere", 4, move(FEES, CASH, "1", TransferFlag.POST_PENDING, hold_id)),
            chain("half-void", 5, move(CASH, FEES, "20", TransferFlag.VOID_PENDING, hold_id)),
            chain("not-pending", 6, move(CASH, FEES, "1", TransferFlag.POST_PENDING, plain.transfers[0].id)),
            chain("missing", 7, move(CASH, FEES, "1", TransferFlag.VOID_PENDING, "nosuch")),
        ]
    )
    reasons = {r.event_id: r.reason for r in result.refused}
    assert set(reasons) == {"over", "elsewhere", "half-void", "not-pending", "missing"} and not result.posted
    assert reasons["over"].endswith(f"pending transfer {hold_id}: posts 40.01, more than the 40 pending")
    assert reasons["elsewhere"].endswith(f"pending transfer {hold_id}, which moves between other accounts")
    assert reasons["half-void"].endswith("a void's amount is 0 or the 40 pending, not 20")
    assert reasons["not-pending"].endswith(f"pending transfer {plain.transfers[0].id}, which is not pending")
    assert (
        reasons["missing"]
        == f"transfer {transfer_id('missing', 0)} resolves pending transfer nosuch, which does not exist"
    )
    assert [t.id for t in await store.open_pending()] == [hold_id]
    assert (await balance_of(store, CASH)).debits_pending == D(40)


# ---- immutable history


async def test_transfers_and_events_cannot_be_changed_but_balances_can(store: LedgerStore) -> None:
    await store.post([deposit("dep", "100")])
    for statement in (
        "UPDATE ledger_transfers SET amount = 1",
        "DELETE FROM ledger_transfers",
        "TRUNCATE ledger_transfers CASCADE",
        "UPDATE ledger_events SET transfers = 0",
        "DELETE FROM ledger_events",
    ):
        with pytest.raises(asyncpg.RestrictViolationError, match="the ledger's history is immutable"):
            await store.pool.execute(statement)
    assert await count(store, "ledger_transfers") == 1 and await count(store, "ledger_events") == 1
    await store.pool.execute("UPDATE ledger_balances SET updated_ns = 0")  # derived: may be corrected


async def test_the_database_refuses_a_flag_violation_whoever_writes(store: LedgerStore) -> None:
    await store.post([deposit("dep", "100")])
    with pytest.raises(asyncpg.CheckViolationError, match="ledger_balances_debits_must_not_exceed_credits"):
        await store.pool.execute(
            "UPDATE ledger_balances SET debits_posted = 100.01 WHERE account_id = $1", CASH.id
        )
    with pytest.raises(asyncpg.CheckViolationError, match="ledger_transfers_amount_not_negative"):
        await store.pool.execute(
            "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, ledger, code,"
            " asset, ts_ns, event_id) VALUES ('x', $1, $2, -1, 1, 1, 'USDT', 0, 'x')",
            CASH.id,
            FEES.id,
        )


# ---- queries


async def test_transfers_page_by_time_with_filters(store: LedgerStore) -> None:
    await store.post(
        [deposit("dep", "100"), *[spend(f"fee-{n}", "1", at=10 + n, strategy_id="s1") for n in range(5)]]
    )
    seen, token, pages = [], "", 0
    while True:
        page = await store.list_transfers(account_id=CASH.id, page_size=2, page_token=token)
        seen += [t.links.event_id for t in page.transfers]
        pages += 1
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert seen == ["dep", "fee-0", "fee-1", "fee-2", "fee-3", "fee-4"] and pages == 3
    window = await store.list_transfers(strategy_id="s1", since_ns=T0 + 11, until_ns=T0 + 13)
    assert [t.links.event_id for t in window.transfers] == ["fee-1", "fee-2"]
    assert (await store.list_transfers(ledger=LedgerId.POSITION)).transfers == ()
    assert len((await store.list_transfers(asset="USDT", event_id="fee-3")).transfers) == 1
    with pytest.raises(InvalidArgument, match="page_token"):
        await store.list_transfers(page_token="nonsense")
    with pytest.raises(InvalidArgument, match="page_size"):
        await store.list_transfers(page_size=0)


async def test_any_link_traces_to_its_transfers(store: LedgerStore) -> None:
    links = dict(
        fill_id="F", order_id="O", client_order_id="C", intent_id="I", decision_id="D", signal_id="S"
    )
    fill = chain("exec-1", 1, move(OUTSIDE, CASH, "5", links=links), move(CASH, FEES, "0.1", links=links))
    await store.post([fill, spend("other", "1", at=2, order_id="O2")])
    expected = list(fill.transfers)
    for value in ("exec-1", *links.values()):
        assert await store.transfers_by_link(value) == expected, value
    assert await store.transfers_by_link(fill.transfers[1].id) == [fill.transfers[1]]
    assert await store.transfers_by_link("") == [] and await store.transfers_by_link("nothing") == []


async def test_balances_filter_by_venue_asset_strategy_and_ledger(store: LedgerStore) -> None:
    btc = account(2, "s2", ledger=LedgerId.POSITION, asset="BTC", venue="other")
    btc_venue = account(20, ledger=LedgerId.POSITION, asset="BTC", venue="other")
    await store.post([deposit("dep", "10"), chain("buy", 1, move(btc, btc_venue, "0.5"))])
    assert [b.account for b in await store.balances(strategy="s1")] == [CASH]
    assert {b.account for b in await store.balances(venue="other")} == {btc, btc_venue}
    (only,) = await store.balances(ledger=LedgerId.POSITION, asset="BTC", strategy="s2")
    assert only.balance.debits_posted == D("0.5") and only.updated_ns == T0 + 1
    assert len(await store.balances()) == 4


async def test_the_pnl_series_is_the_strategys_realised_result_per_bucket(store: LedgerStore) -> None:
    hour = 3600 * 10**9
    base = T0 - T0 % hour
    events = [
        chain("pnl-1", base - T0 + 10, move(PNL_VENUE, PNL_S1, "100")),  # a gain: credits the strategy
        chain("fee-1", base - T0 + 20, move(FEE_S1, FEE_VENUE, "2.5")),  # a fee: debits it
        chain("pnl-2", base - T0 + hour + 5, move(PNL_S1, PNL_VENUE, "30")),  # a loss
        chain("fund-1", base - T0 + 2 * hour, move(FUNDING_VENUE, FUNDING_S1, "1.25")),
        chain("fee-2", base - T0 + 2 * hour + 1, move(FEE_S1, FEE_VENUE, "0.5")),
        chain(
            "other", base - T0 + 30, move(PNL_VENUE, account(40, "s2", ledger=LedgerId.REALISED_PNL), "999")
        ),
    ]
    await store.post(events)
    series = await store.pnl_series("s1", hour)
    got = [(p.bucket_ns - base, p.ledger, p.amount, p.cumulative) for p in series]
    assert got == [
        (0, LedgerId.FEES, D("-2.5"), D("-2.5")),
        (0, LedgerId.REALISED_PNL, D(100), D(100)),
        (hour, LedgerId.REALISED_PNL, D(-30), D(70)),
        (2 * hour, LedgerId.FEES, D("-0.5"), D("-3.0")),
        (2 * hour, LedgerId.FUNDING_PNL, D("1.25"), D("1.25")),
    ]
    assert all(p.asset == "USDT" for p in series)
    # From the second hour: the cumulative still counts from the start.
    later = await store.pnl_series("s1", hour, ledgers=[LedgerId.REALISED_PNL], since_ns=base + hour)
    assert [(p.amount, p.cumulative) for p in later] == [(D(-30), D(70))]
    assert await store.pnl_series("s1", hour, codes=[999]) == []
    with pytest.raises(InvalidArgument, match="bucket_ns"):
        await store.pnl_series("s1", 0)


# ---- verify


async def test_verify_passes_on_a_consistent_ledger_and_names_a_tampered_balance(store: LedgerStore) -> None:
    await store.post([deposit("dep", "100"), spend("fee", "0.5")])
    await store.post([chain("hold", 3, move(CASH, FEES, "7", TransferFlag.PENDING))])
    report = await verify(store.pool)
    assert report.ok, report.summary()
    assert (report.accounts, report.transfers, report.events) == (3, 3, 3)
    await store.pool.execute(
        "UPDATE ledger_balances SET credits_posted = 100.5 WHERE account_id = $1", CASH.id
    )
    await store.pool.execute("UPDATE ledger_balances SET debits_pending = 0 WHERE account_id = $1", CASH.id)
    await store.pool.execute("DELETE FROM ledger_balances WHERE account_id = $1", FEES.id)
    report = await verify(store.pool)
    assert not report.ok
    assert set(report.mismatches) == {
        BalanceMismatch(CASH.id, "credits_posted", D("100.5"), D(100)),
        BalanceMismatch(CASH.id, "debits_pending", D(0), D(7)),
        BalanceMismatch(FEES.id, "row", None, D("7.5")),
    }
    assert f"account {CASH.id}: credits_posted stored 100.5, recomputed 100" in report.summary()


async def test_verify_finds_crossed_transfers_half_posted_events_and_flag_violations(
    store: LedgerStore,
) -> None:
    btc = account(2, "s1", ledger=LedgerId.POSITION, asset="BTC")
    await store.post(
        [
            deposit("dep", "10"),
            chain("buy", 1, move(btc, account(20, ledger=LedgerId.POSITION, asset="BTC"), "1")),
        ]
    )
    # Written behind the store's back: a transfer across ledgers, without its event, overdrawing cash.
    await store.pool.execute(
        "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, ledger, code, asset,"
        " ts_ns, event_id) VALUES ('rogue', $1, $2, 11, 1, 1, 'USDT', 0, 'rogue-event')",
        CASH.id,
        btc.id,
    )
    report = await verify(store.pool)
    kinds = {(p.kind, p.subject) for p in report.problems}
    assert kinds == {
        ("crossed_transfer", "rogue"),
        ("unbalanced_event", "rogue-event"),
        ("event_count", "rogue-event"),
        ("flag_violated", CASH.id),
    }
    assert BalanceMismatch(CASH.id, "debits_posted", D(0), D(11)) in report.mismatches


# ---- a poster killed in the middle of a batch

_POSTER_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'trademesh-ledger'"
)


async def _wait_for(admin: Any, sql: str, database: str, want: bool, timeout_s: float) -> None:
    """Polls until `sql` counts something (want) or nothing (not want)."""
    deadline = time.monotonic() + timeout_s
    while bool(await admin.fetchval(sql, database)) != want:
        assert time.monotonic() < deadline, f"still {not want} after {timeout_s} s: {sql}"
        await asyncio.sleep(0.002)


async def test_a_poster_killed_mid_batch_leaves_whole_batches_and_reposting_adds_nothing(
    fresh_database: str, database_url: str
) -> None:
    chains_per_batch = 1000  # 2,000 transfers a batch
    database = fresh_database.rsplit("/", 1)[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.ledger_poster",
        fresh_database,
        "1000",
        str(chains_per_batch),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    admin = await asyncpg.connect(database_url)
    try:
        assert process.stdout is not None
        # Let a few batches commit, then kill it while it is inside a transaction that has written.
        last = -1
        while last < 3:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, "the poster stopped"
            last = json.loads(line).get("posting", last)
        await _wait_for(admin, _POSTER_BACKENDS + " AND backend_xid IS NOT NULL", database, True, 30)
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
        await _wait_for(admin, _POSTER_BACKENDS, database, False, 30)  # its transaction rolled back
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await admin.close()
    store = await LedgerStore.open(fresh_database)
    try:
        # The events posted are whole batches (the one being written is all or nothing).
        events = await count(store, "ledger_events") - 1  # less the funding chain
        assert events % chains_per_batch == 0 and events >= 3 * chains_per_batch
        report = await verify(store.pool)
        assert report.ok, report.summary()
        assert report.transfers == 8 + 2 * events
        # Posting every batch up to the interrupted one again adds only what was not there.
        batches = events // chains_per_batch + 1
        again = [await store.post(ledger_poster.batch(n, chains_per_batch)) for n in range(batches)]
        assert sum(len(r.duplicates) for r in again) == events
        assert sum(len(r.posted) for r in again) == chains_per_batch and not any(r.refused for r in again)
        report = await verify(store.pool)
        assert report.ok, report.summary()
        assert report.transfers == 8 + 2 * batches * chains_per_batch
        # And the balances are those of every chain once: strategy 0's cash paid each of its fees.
        fees = sum(
            ledger_poster.chain(n).transfers[0].amount for n in range(0, batches * chains_per_batch, 8)
        )
        cash_id = ledger_poster.ACCOUNTS["cash"][0].id
        (cash,) = [b for b in await store.balances(strategy="s0") if b.account.id == cash_id]
        assert cash.balance.debits_posted == fees
    finally:
        await store.close()
