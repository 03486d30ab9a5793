"""`ledger verify` checks the margin on real PostgreSQL (docs/ledger.md, "Margin and
liquidation"): books of a 10x perpetual opened, reduced and liquidated by the core, stored as the
service stores them, verify; a venue's cash held as margin that is not its margin ledger's, and
a flat position left holding margin, are named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.integration.postgres_server import database_url, fresh_database
from trademesh.core.domain.model import InstrumentKind, Side
from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import DepositEvent, FillEvent
from trademesh.core.ledger.engine.model import Links
from trademesh.core.ledger.store import LedgerStore
from trademesh.core.ledger.verify import verify

pytestmark = pytest.mark.integration
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

D = Decimal
V, SYMBOL = "sim", "BTC/USDT:USDT"


@pytest.fixture
async def store(fresh_database: str) -> AsyncIterator[LedgerStore]:
    opened = await LedgerStore.open(fresh_database)
    try:
        yield opened
    finally:
        await opened.close()


def perp(n: int, side: Side, contracts: str, price: str, fee: str, liquidation: bool = False) -> FillEvent:
    """A 10x fill of BTC/USDT:USDT contracts of 0.01 BTC; a liquidation's is the venue's (no strategy)."""
    links = Links(event_id="", fill_id=str(n), strategy_id="" if liquidation else "trend")
    return FillEvent(
        event_id=f"fill/{V}/{n}", venue=V, symbol=SYMBOL, base="BTC", quote="USDT",
        instrument=InstrumentKind.PERPETUAL, side=side, price=D(price), size=D(contracts), fee=D(fee),
        fee_asset="USDT", ts_ns=n, links=links,
        contract_size=D("0.01"), leverage=D(10), liquidation=liquidation,
    )  # fmt: skip


async def booked(store: LedgerStore, *events: DepositEvent | FillEvent) -> LedgerCore:
    core = LedgerCore()
    chains = []
    for event in events:
        posting = core.post(event)
        assert posting.chain is not None, posting.refusal
        chains.append(posting.chain)
    result = await store.post(chains)
    assert not result.refused, result
    return core


async def test_verify_holds_through_a_liquidation_and_names_margin_out_of_place(store: LedgerStore) -> None:
    await booked(
        store,
        DepositEvent("deposit/1", V, "USDT", D(1000), 0),
        perp(1, Side.BUY, "10", "30000", "1.2"),
        perp(2, Side.SELL, "4", "31000", "0.496"),
    )
    report = await verify(store.pool)
    assert report.ok, report.summary()
    locked = chart.margin_locked(V, SYMBOL, "trend", "USDT")
    # The cash ledger's hold moved behind the store's back: no longer the margin ledger's.
    await store.pool.execute(
        "UPDATE ledger_balances SET debits_pending = 170 WHERE account_id = $1", locked.id
    )
    report = await verify(store.pool)
    kinds = {(p.kind, p.subject) for p in report.problems}
    assert ("margin_unmatched", f"{V}/USDT") in kinds, report.summary()
    assert "cash held as margin 180, the margin ledger's accounts 170" in report.summary()
    await store.pool.execute(
        "UPDATE ledger_balances SET debits_pending = 180 WHERE account_id = $1", locked.id
    )

    # The liquidation: the margin released, the books verify.
    liquidation = perp(3, Side.SELL, "6", "27000", "8.1", liquidation=True)
    accounts, balances = await store.load()
    core = LedgerCore(accounts.values(), balances)
    posting = core.post(liquidation)
    assert posting.chain is not None, posting.refusal
    await store.post([posting.chain])
    report = await verify(store.pool)
    assert report.ok, report.summary()

    # A flat position said to hold margin (both ledgers alike): named.
    cash_margin = chart.cash_margin(V, "USDT")
    for key in (locked, cash_margin):
        await store.pool.execute(
            "UPDATE ledger_balances SET debits_pending = 5 WHERE account_id = $1", key.id
        )
    report = await verify(store.pool)
    problems = {(p.kind, p.subject) for p in report.problems}
    assert ("margin_on_flat", locked.id) in problems, report.summary()
    assert not any(kind == "margin_unmatched" for kind, _ in problems)
