"""The ledger's store posting batches into PostgreSQL (issue 16: ≥ 10,000 transfers/s, and at
least half the rate of a raw COPY of the same rows).

Two fresh databases on one server, both with the ledger's schema (trademesh/core/ledger/migrations):

- store: LedgerStore.post(batch), each batch in one transaction: its events recorded (the
  idempotency check), accounts created when new, the transfers written, the balances updated
  (one row per account), the flags checked by the database. `store-unnest` and
  `store-executemany` are the same with the transfers written by one INSERT of arrays or by
  executemany instead of COPY (--modes).
- raw: the same transfer rows COPied into ledger_transfers of the other database, one
  transaction per batch, nothing else: no events, no balances, no idempotency (the accounts
  exist: the table's foreign keys and indexes are the same as the store's).

Each batch holds --batch-transfers transfers in chains of 2 (a fee paid out of a strategy's
cash, a position moved: two ledgers), across --strategies strategies (3 accounts each, plus 2
shared). The chains are built before the clock starts (the engine makes them, not the store);
each run posts new events. Runs of each mode alternate (a noisy neighbour hits them alike);
the figures are medians of --repeats runs. CPU per transfer is this process's (Python,
asyncpg) and the PostgreSQL backend's (from /proc, same machine). At the end verify() checks
the store's database and says how long that took.

    .venv/bin/python bench/ledger_post.py                      # 1,000-transfer batches, 5 repeats
    .venv/bin/python bench/ledger_post.py --modes raw,store,store-unnest,store-executemany
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from trademesh.core.ledger.engine.model import (
    Account,
    AccountFlag,
    AccountKey,
    Chain,
    LedgerId,
    Links,
    Transfer,
    transfer_id,
)
from trademesh.core.ledger.store import LedgerStore
from trademesh.core.ledger.verify import verify
from trademesh.core.platform.config.env import database_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

MODES = ("raw", "store")
_INSERTS = {"store": "copy", "store-unnest": "unnest", "store-executemany": "executemany"}
VENUE = "sim"
TS0_NS = 1_790_000_000_000_000_000
_LOT = Decimal("0.001")
COLUMNS = (
    "id", "debit_account_id", "credit_account_id", "amount", "ledger", "code", "asset", "ts_ns",
    "flags", "pending_id", "event_id", "fill_id", "order_id", "client_order_id", "intent_id",
    "decision_id", "signal_id", "strategy_id",
)  # fmt: skip


@dataclass
class Run:
    mode: str
    transfers: int
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float

    @property
    def per_s(self) -> float:
        return self.transfers / self.wall_s


class Workload:
    """The accounts and the chains: strategy s's cash (never overdrawn), fees and position."""

    def __init__(self, strategies: int) -> None:
        self.funding = Account(AccountKey(LedgerId.CASH, 100, VENUE, "USDT"))
        self.fee_income = Account(AccountKey(LedgerId.CASH, 30, VENUE, "USDT"))
        self.venue_position = Account(AccountKey(LedgerId.POSITION, 20, VENUE, "BTC"))
        flags = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
        self.cash = [
            Account(AccountKey(LedgerId.CASH, 1, VENUE, "USDT", f"s{n}"), flags) for n in range(strategies)
        ]
        self.position = [
            Account(AccountKey(LedgerId.POSITION, 2, VENUE, "BTC", f"s{n}")) for n in range(strategies)
        ]
        self.strategies = strategies

    def funding_chain(self) -> Chain:
        transfers = tuple(
            Transfer(
                transfer_id("funding", n),
                self.funding.id,
                cash.id,
                Decimal(10**12),
                LedgerId.CASH,
                1,
                "USDT",
                TS0_NS,
                Links("funding"),
            )
            for n, cash in enumerate(self.cash)
        )
        return Chain("funding", TS0_NS, transfers, (self.funding, *self.cash))

    def chain(self, n: int) -> Chain:
        event, s = f"fill-{n}", n % self.strategies
        ts = TS0_NS + 1000 + n
        links = Links(
            event, f"f{n}", f"o{n // 2}", f"c{n // 2}", f"i{n // 4}", f"d{n // 4}", f"g{n // 8}", f"s{s}"
        )
        cash, position = self.cash[s], self.position[s]
        fee_amount = Decimal(n % 997 + 1) / 10000
        fee = Transfer(
            transfer_id(event, 0),
            cash.id,
            self.fee_income.id,
            fee_amount,
            LedgerId.CASH,
            3,
            "USDT",
            ts,
            links,
        )
        moved = Transfer(
            transfer_id(event, 1), position.id, self.venue_position.id, _LOT, LedgerId.POSITION, 2,
            "BTC", ts, links,
        )  # fmt: skip
        return Chain(event, ts, (fee, moved), (cash, self.fee_income, position, self.venue_position))


def row(t: Transfer) -> tuple[Any, ...]:
    """A ledger_transfers row, as the raw baseline writes it (the store's own is private)."""
    k = t.links
    return (
        t.id, t.debit_account_id, t.credit_account_id, t.amount, int(t.ledger), t.code, t.asset, t.ts_ns,
        int(t.flags), t.pending_id or None, k.event_id, k.fill_id, k.order_id, k.client_order_id,
        k.intent_id, k.decision_id, k.signal_id, k.strategy_id,
    )  # fmt: skip


async def run_store(store: LedgerStore, batches: list[list[Chain]], mode: str) -> Run:
    async with store.pool.acquire() as conn:  # the pool's one connection: its backend's CPU
        server = common.CpuMeter(conn.get_server_pid())
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    server.percent()
    transfers = 0
    for chains in batches:
        result = await store.post(chains)
        if result.refused or result.duplicates:
            raise RuntimeError(f"unexpected: {result.refused[:2]} {result.duplicates[:2]}")
        transfers += result.transfers
    wall = time.perf_counter() - wall0
    return Run(mode, transfers, wall, time.process_time() - cpu0, server.percent() * wall / 100)


async def run_raw(conn: Any, batches: list[list[Chain]]) -> Run:
    server = common.CpuMeter(conn.get_server_pid())
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    server.percent()
    transfers = 0
    for chains in batches:
        rows = [row(t) for chain in chains for t in chain.transfers]
        async with conn.transaction():
            await conn.copy_records_to_table("ledger_transfers", records=rows, columns=COLUMNS)
        transfers += len(rows)
    wall = time.perf_counter() - wall0
    return Run("raw", transfers, wall, time.process_time() - cpu0, server.percent() * wall / 100)


async def bench(
    args: argparse.Namespace, modes: Sequence[str]
) -> tuple[dict[str, list[Run]], dict[str, Any]]:
    server_url = database_url(args.database_url)
    stores: dict[str, LedgerStore] = {}
    # One database per mode, each dropped after every store is closed (the stack unwinds last).
    async with contextlib.AsyncExitStack() as databases:
        try:
            for mode in modes:
                url = await databases.enter_async_context(common.scratch_database(server_url, "ledbench"))
                stores[mode] = await LedgerStore.open(url, 1, _INSERTS.get(mode, "copy"))
            return await _measure(args, modes, stores)
        finally:
            for store in stores.values():
                await store.close()


async def _measure(
    args: argparse.Namespace, modes: Sequence[str], stores: dict[str, LedgerStore]
) -> tuple[dict[str, list[Run]], dict[str, Any]]:
    workload = Workload(args.strategies)
    chains_per_batch = args.batch_transfers // 2
    # Accounts, funding and a first batch (a warm-up) in every database: raw's too, whose
    # transfers then reference existing accounts.
    warm = [workload.funding_chain()] + [workload.chain(n) for n in range(chains_per_batch)]
    for store in stores.values():
        await store.post(warm)
    events = chains_per_batch
    runs: dict[str, list[Run]] = {mode: [] for mode in modes}
    for repeat in range(args.repeats):
        for mode in modes:
            batches = []
            for _ in range(args.batches):
                batches.append([workload.chain(n) for n in range(events, events + chains_per_batch)])
                events += chains_per_batch
            if mode == "raw":
                async with stores["raw"].pool.acquire() as conn:
                    run = await run_raw(conn, batches)
            else:
                run = await run_store(stores[mode], batches, mode)
            runs[mode].append(run)
            print(f"repeat {repeat + 1} {mode}: {run.per_s:,.0f} transfers/s", flush=True)
    checked: dict[str, Any] = {}
    store_mode = next((m for m in modes if m != "raw"), None)
    if store_mode is not None:
        started = time.perf_counter()
        report = await verify(stores[store_mode].pool)
        checked = {
            "database": store_mode,
            "ok": report.ok,
            "transfers": report.transfers,
            "accounts": report.accounts,
            "seconds": time.perf_counter() - started,
        }
    return runs, checked


def summarise(runs: list[Run]) -> dict[str, Any]:
    rates = [r.per_s for r in runs]
    return {
        "transfers_per_run": runs[0].transfers,
        "transfers_per_s_median": common.median(rates),
        "transfers_per_s_range": [min(rates), max(rates)],
        "client_cpu_us_per_transfer_median": common.median(
            [1e6 * r.client_cpu_s / r.transfers for r in runs]
        ),
        "server_cpu_us_per_transfer_median": common.median(
            [1e6 * r.server_cpu_s / r.transfers for r in runs]
        ),
        "runs": [asdict(r) for r in runs],
    }


def ratios(runs: dict[str, list[Run]]) -> dict[str, float]:
    """Each store mode's rate ÷ raw's: of the medians, and the median of each repeat's pair."""
    if "raw" not in runs:
        return {}
    raw = runs["raw"]
    found = {}
    for mode, mine in runs.items():
        if mode == "raw":
            continue
        found[f"{mode}_over_raw_of_medians"] = common.median([r.per_s for r in mine]) / common.median(
            [r.per_s for r in raw]
        )
        found[f"{mode}_over_raw_median_of_pairs"] = common.median(
            [a.per_s / b.per_s for a, b in zip(mine, raw, strict=True)]
        )
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a server to create databases on (default: DATABASE_URL, else local)",
    )
    parser.add_argument("--batch-transfers", type=int, default=1000, help="transfers per batch (chains of 2)")
    parser.add_argument("--batches", type=int, default=20, help="batches per run (default 20)")
    parser.add_argument(
        "--strategies", type=int, default=50, help="strategies the chains spread over (default 50)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per mode, alternating (default 5)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma separated, of raw,{','.join(_INSERTS)}"
    )
    parser.add_argument("--result", default="ledger_post", help="bench/results/<name>.json")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m != "raw" and m not in _INSERTS]
    if unknown:
        raise SystemExit(f"unknown modes: {unknown}")
    started, machine = common.now_iso(), common.machine()
    runs, checked = asyncio.run(bench(args, modes))
    result = {mode: summarise(r) for mode, r in runs.items()}
    found = ratios(runs)
    _print(result, found, checked, args)
    if not args.no_save:
        payload = {
            "benchmark": "ledger_post",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": vars(args),
            "result": result,
            "ratios": found,
            "verify": checked,
        }
        print(f"results: {common.write_result(args.result, payload)}")


def _print(
    result: dict[str, dict[str, Any]],
    found: dict[str, float],
    checked: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nledger_post: batches of {args.batch_transfers} transfers, {args.batches} per run,"
        f" median of {args.repeats} runs"
    )
    rows = []
    for mode, r in result.items():
        low, high = r["transfers_per_s_range"]
        rows.append([
            mode, r["transfers_per_run"], r["transfers_per_s_median"], f"{low:,.0f}-{high:,.0f}",
            r["client_cpu_us_per_transfer_median"], r["server_cpu_us_per_transfer_median"],
        ])  # fmt: skip
    common.print_table(
        ["mode", "transfers", "transfers/s", "range", "client µs/transfer", "server µs/transfer"], rows
    )
    for name, ratio in found.items():
        print(f"{name}: {ratio:.2f}")
    if checked:
        print(
            f"verify ({checked['database']}): ok={checked['ok']}, {checked['transfers']:,} transfers,"
            f" {checked['accounts']} accounts, {checked['seconds']:.2f} s"
        )


if __name__ == "__main__":
    main()
