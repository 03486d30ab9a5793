"""The ledger verifies its own books on a timer (as Ledger/Verify does on demand), so that the
`trademesh_ledger_verify_mismatches` / `_problems` gauges, and the LedgerVerifyMismatch alert
on them (ops/prometheus/rules/alerts.yml), speak without anyone asking."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from trademesh.core.ledger.metrics import record_verify
from trademesh.core.ledger.verify import verify

__all__ = ["run_audits"]

log = logging.getLogger(__name__)


async def run_audits(pool: Any, every_s: float, stop: asyncio.Event) -> None:
    """Verifies the books every `every_s` until `stop` (the first at once), recording the findings
    in the gauges and logging a failed check; a verify that fails (the database away) is logged and
    tried again at the next turn."""
    while not stop.is_set():
        try:
            report = await verify(pool)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("ledger: could not verify the books: %s", exc)
        else:
            record_verify(report)
            if not report.ok:
                log.error("ledger: the books do not verify:\n%s", report.summary())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
