"""The ledger checked against itself: every balance recomputed from the transfers, and every
transfer, event and pending resolution checked, in one consistent snapshot (a read-only
REPEATABLE READ transaction, so posting may go on meanwhile).

Balances are recomputed as the store keeps them, after TigerBeetle: a PENDING transfer counts
as pending on both accounts until a POST_PENDING or VOID_PENDING transfer resolves it, which
releases the whole pending amount from the pending transfer's accounts; posted amounts are
those of plain and POST_PENDING transfers.

The report names each mismatch precisely: the account, the field, the stored and the
recomputed value; and each other problem with what it concerns. Balances may be corrected by
hand (they are derived); transfers and events are immutable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trademesh.core.ledger.engine.model import ZERO, AccountFlag, LedgerBalance

__all__ = ["BALANCE_FIELDS", "BalanceMismatch", "Problem", "VerifyReport", "verify"]

BALANCE_FIELDS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")

_RECOMPUTED = """
WITH moves AS (
    SELECT debit_account_id AS account_id, amount AS dp, 0 AS cp, 0 AS dpe, 0 AS cpe
    FROM ledger_transfers WHERE flags IN (0, 2)
    UNION ALL
    SELECT credit_account_id, 0, amount, 0, 0 FROM ledger_transfers WHERE flags IN (0, 2)
    UNION ALL
    SELECT debit_account_id, 0, 0, amount, 0 FROM ledger_transfers WHERE flags = 1
    UNION ALL
    SELECT credit_account_id, 0, 0, 0, amount FROM ledger_transfers WHERE flags = 1
    UNION ALL
    SELECT p.debit_account_id, 0, 0, -p.amount, 0
    FROM ledger_transfers t JOIN ledger_transfers p ON p.id = t.pending_id
    UNION ALL
    SELECT p.credit_account_id, 0, 0, 0, -p.amount
    FROM ledger_transfers t JOIN ledger_transfers p ON p.id = t.pending_id
),
recomputed AS (
    SELECT account_id, sum(dp) AS dp, sum(cp) AS cp, sum(dpe) AS dpe, sum(cpe) AS cpe
    FROM moves GROUP BY account_id
)
SELECT coalesce(a.id, r.account_id, b.account_id) AS account_id,
       a.flags AS account_flags, b.flags AS stored_flags, b.account_id IS NOT NULL AS has_row,
       coalesce(r.dp, 0) AS r_debits_posted, coalesce(r.cp, 0) AS r_credits_posted,
       coalesce(r.dpe, 0) AS r_debits_pending, coalesce(r.cpe, 0) AS r_credits_pending,
       b.debits_posted AS s_debits_posted, b.credits_posted AS s_credits_posted,
       b.debits_pending AS s_debits_pending, b.credits_pending AS s_credits_pending
FROM ledger_accounts a
FULL JOIN recomputed r ON r.account_id = a.id
FULL JOIN ledger_balances b ON b.account_id = coalesce(a.id, r.account_id)
ORDER BY 1
"""
_CROSSED = """
SELECT t.id, t.ledger, t.asset, d.ledger AS d_ledger, d.asset AS d_asset, c.ledger AS c_ledger,
       c.asset AS c_asset
FROM ledger_transfers t
JOIN ledger_accounts d ON d.id = t.debit_account_id
JOIN ledger_accounts c ON c.id = t.credit_account_id
WHERE NOT (d.ledger = t.ledger AND c.ledger = t.ledger AND d.asset = t.asset AND c.asset = t.asset)
ORDER BY t.id LIMIT $1
"""
_UNBALANCED = """
SELECT event_id, ledger, asset, sum(amount) AS net
FROM (
    SELECT t.event_id, d.ledger, d.asset, t.amount
    FROM ledger_transfers t JOIN ledger_accounts d ON d.id = t.debit_account_id
    UNION ALL
    SELECT t.event_id, c.ledger, c.asset, -t.amount
    FROM ledger_transfers t JOIN ledger_accounts c ON c.id = t.credit_account_id
) sides
GROUP BY event_id, ledger, asset
HAVING sum(amount) <> 0
ORDER BY event_id LIMIT $1
"""
_COUNTS = """
SELECT coalesce(e.event_id, t.event_id) AS event_id, e.transfers AS recorded, coalesce(t.n, 0) AS found
FROM ledger_events e
FULL JOIN (SELECT event_id, count(*) AS n FROM ledger_transfers GROUP BY event_id) t
    ON t.event_id = e.event_id
WHERE e.event_id IS NULL OR e.transfers <> coalesce(t.n, 0)
ORDER BY 1 LIMIT $1
"""
_RESOLUTIONS = """
SELECT t.id, t.pending_id, t.flags, t.amount, p.flags AS pending_flags, p.amount AS pending_amount,
       t.debit_account_id = p.debit_account_id AND t.credit_account_id = p.credit_account_id
           AS same_accounts
FROM ledger_transfers t JOIN ledger_transfers p ON p.id = t.pending_id
WHERE p.flags <> 1
   OR t.debit_account_id <> p.debit_account_id OR t.credit_account_id <> p.credit_account_id
   OR (t.flags = 2 AND t.amount > p.amount)
   OR (t.flags = 4 AND t.amount <> 0 AND t.amount <> p.amount)
ORDER BY t.id LIMIT $1
"""
# Margin (docs/ledger.md, "Margin and liquidation"): per venue and asset, the cash ledger's hold
# (cash_margin, 106) is the margin ledger's accounts (margin_locked, 501) summed; a flat
# perpetual position (perp_quantity, 202) holds none. Read from the stored balances (those the
# transfers' are compared with above).
_MARGIN_UNMATCHED = """
WITH held AS (
    SELECT a.venue, a.asset, a.code, sum(b.debits_pending) AS pending
    FROM ledger_accounts a JOIN ledger_balances b ON b.account_id = a.id
    WHERE a.code IN (106, 501)
    GROUP BY a.venue, a.asset, a.code
)
SELECT coalesce(c.venue, m.venue) AS venue, coalesce(c.asset, m.asset) AS asset,
       coalesce(c.pending, 0) AS cash, coalesce(m.pending, 0) AS margin
FROM (SELECT * FROM held WHERE code = 106) c
FULL JOIN (SELECT * FROM held WHERE code = 501) m ON m.venue = c.venue AND m.asset = c.asset
WHERE coalesce(c.pending, 0) <> coalesce(m.pending, 0)
ORDER BY 1, 2 LIMIT $1
"""
_MARGIN_ON_FLAT = """
SELECT m.id, m.venue, m.symbol, m.strategy, m.asset, mb.debits_pending AS pending
FROM ledger_accounts m
JOIN ledger_balances mb ON mb.account_id = m.id
LEFT JOIN ledger_accounts q
    ON q.code = 202 AND q.venue = m.venue AND q.symbol = m.symbol AND q.strategy = m.strategy
LEFT JOIN ledger_balances qb ON qb.account_id = q.id
WHERE m.code = 501 AND mb.debits_pending <> 0
  AND coalesce(qb.debits_posted - qb.credits_posted, 0) = 0
ORDER BY m.id LIMIT $1
"""
_TOTALS = """
SELECT (SELECT count(*) FROM ledger_accounts) AS accounts,
       (SELECT count(*) FROM ledger_transfers) AS transfers,
       (SELECT count(*) FROM ledger_events) AS events
"""


@dataclass(frozen=True)
class BalanceMismatch:
    """A stored balance that differs from the transfers' (None: the row or the account is missing;
    field "flags": the balance row's flags differ from the account's)."""

    account_id: str
    field: str
    stored: Decimal | int | None
    recomputed: Decimal | int | None


@dataclass(frozen=True)
class Problem:
    """Anything else wrong. kind: "crossed_transfer" (an account of another ledger or asset),
    "unbalanced_event", "event_count" (an event's transfers not all there, or transfers without
    their event), "bad_resolution" (a post or void of something it may not resolve),
    "flag_violated" (a recomputed balance breaks its account's flags), "margin_unmatched" (a venue's
    cash held as margin is not its margin ledger's), "margin_on_flat" (a flat perpetual position
    holding margin)."""

    kind: str
    subject: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    accounts: int
    transfers: int
    events: int
    mismatches: tuple[BalanceMismatch, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.problems

    def summary(self) -> str:
        head = f"{self.accounts} accounts, {self.transfers} transfers, {self.events} events"
        if self.ok:
            return f"{head}: consistent"
        lines = [f"{head}: {len(self.mismatches)} balance mismatch(es), {len(self.problems)} problem(s)"]
        lines += [
            f"  account {m.account_id}: {m.field} stored {m.stored}, recomputed {m.recomputed}"
            for m in self.mismatches
        ]
        lines += [f"  {p.kind} {p.subject}: {p.detail}" for p in self.problems]
        return "\n".join(lines)


async def verify(pool: Any, limit: int = 1000) -> VerifyReport:
    """Checks the whole ledger (module docstring); at most `limit` problems of each kind."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        totals = await conn.fetchrow(_TOTALS)
        mismatches, violations = _balances(await conn.fetch(_RECOMPUTED))
        problems = [
            *_crossed(await conn.fetch(_CROSSED, limit)),
            *_unbalanced(await conn.fetch(_UNBALANCED, limit)),
            *_counts(await conn.fetch(_COUNTS, limit)),
            *_resolutions(await conn.fetch(_RESOLUTIONS, limit)),
            *_margins(await conn.fetch(_MARGIN_UNMATCHED, limit), await conn.fetch(_MARGIN_ON_FLAT, limit)),
            *violations[:limit],
        ]
    return VerifyReport(
        totals["accounts"], totals["transfers"], totals["events"], tuple(mismatches[:limit]), tuple(problems)
    )


def _balances(rows: Iterable[Any]) -> tuple[list[BalanceMismatch], list[Problem]]:
    mismatches: list[BalanceMismatch] = []
    violations: list[Problem] = []
    for row in rows:
        account_id = row["account_id"]
        if row["account_flags"] is None:
            mismatches.append(BalanceMismatch(account_id, "account", None, None))
            continue
        recomputed = [row[f"r_{name}"] for name in BALANCE_FIELDS]
        if not row["has_row"]:
            mismatches.append(BalanceMismatch(account_id, "row", None, sum(recomputed, ZERO)))
        else:
            for name, value in zip(BALANCE_FIELDS, recomputed, strict=True):
                if row[f"s_{name}"] != value:
                    mismatches.append(BalanceMismatch(account_id, name, row[f"s_{name}"], value))
            if row["stored_flags"] != row["account_flags"]:
                mismatches.append(
                    BalanceMismatch(account_id, "flags", row["stored_flags"], row["account_flags"])
                )
        dp, cp, dpe, cpe = recomputed
        reason = LedgerBalance(dp, cp, dpe, cpe, AccountFlag(row["account_flags"])).violation()
        if reason:
            violations.append(Problem("flag_violated", account_id, reason))
    return mismatches, violations


def _crossed(rows: Iterable[Any]) -> list[Problem]:
    return [
        Problem(
            "crossed_transfer",
            row["id"],
            f"transfer on ledger {row['ledger']} in {row['asset']}: debit account on ledger"
            f" {row['d_ledger']} in {row['d_asset']}, credit account on ledger {row['c_ledger']}"
            f" in {row['c_asset']}",
        )
        for row in rows
    ]


def _unbalanced(rows: Iterable[Any]) -> list[Problem]:
    return [
        Problem(
            "unbalanced_event",
            row["event_id"],
            f"ledger {row['ledger']} in {row['asset']}: debits less credits {row['net']}",
        )
        for row in rows
    ]


def _counts(rows: Iterable[Any]) -> list[Problem]:
    return [
        Problem(
            "event_count",
            row["event_id"],
            f"{row['found']} transfer(s) without a recorded event"
            if row["recorded"] is None
            else f"{row['recorded']} transfer(s) recorded, {row['found']} found",
        )
        for row in rows
    ]


def _resolutions(rows: Iterable[Any]) -> list[Problem]:
    problems = []
    for row in rows:
        if row["pending_flags"] != 1:
            why = "which is not a pending transfer"
        elif not row["same_accounts"]:
            why = "which moves between other accounts"
        else:
            why = f"of {row['pending_amount']} with {row['amount']}"
        problems.append(Problem("bad_resolution", row["id"], f"resolves {row['pending_id']}, {why}"))
    return problems


def _margins(unmatched: Iterable[Any], flat: Iterable[Any]) -> list[Problem]:
    problems = [
        Problem(
            "margin_unmatched",
            f"{row['venue']}/{row['asset']}",
            f"cash held as margin {row['cash']}, the margin ledger's accounts {row['margin']}",
        )
        for row in unmatched
    ]
    problems += [
        Problem(
            "margin_on_flat",
            row["id"],
            f"{row['venue']}/{row['symbol']} strategy {row['strategy']!r} is flat and holds {row['pending']}"
            f" {row['asset']} of margin",
        )
        for row in flat
    ]
    return problems
