"""The ledger's commands that run without the service: `trademesh ledger verify` and
`trademesh trace <id>`, straight on PostgreSQL (the books and the recorder's tables)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from trademesh.core.ledger.store import LedgerStore
from trademesh.core.ledger.trace import Trace, trace
from trademesh.core.ledger.verify import verify

__all__ = ["render_trace", "run_trace", "run_verify"]


async def run_verify(database_url: str, say: Callable[[str], None]) -> bool:
    """Recompute every balance from the transfers and compare; True when consistent."""
    store = await LedgerStore.open(database_url)
    try:
        report = await verify(store.pool)
    finally:
        await store.close()
    say(report.summary())
    return report.ok


async def run_trace(database_url: str, wanted: str) -> Trace:
    store = await LedgerStore.open(database_url)
    try:
        return await trace(store.pool, wanted)
    finally:
        await store.close()


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if ns else "-"


def render_trace(found: Trace) -> list[str]:
    """The chain as lines: each step's time, kind, id and summary, then its key fields."""
    said = "its audit trail, oldest first" if found.kind == "proposal" else "its chain, signal first"
    lines = [f"{found.id} is a {found.kind}; {said}:"]
    for step in found.steps:
        lines.append(f"{_time(step.ts_ns)}  {step.kind:<10} {step.id}  {step.summary}")
        shown = ", ".join(f"{name}={value}" for name, value in step.fields if value)
        if shown:
            lines.append(f"{'':25}{shown}")
    if not found.steps:
        lines.append("  (no step of its chain is recorded)")
    return lines
