"""The ledger's verify findings as Prometheus gauges: what the last Ledger/Verify found, kept
until the next one (the books posting metrics are trademesh.core.ledger.posting's)."""

from __future__ import annotations

from prometheus_client import Gauge

from trademesh.core.ledger.verify import VerifyReport

__all__ = ["VERIFY_MISMATCHES", "VERIFY_PROBLEMS", "record_verify"]

VERIFY_MISMATCHES = Gauge(
    "trademesh_ledger_verify_mismatches",
    "Balance mismatches the last Verify found (stored balances that differ from the transfers').",
)
VERIFY_PROBLEMS = Gauge(
    "trademesh_ledger_verify_problems",
    "Other problems the last Verify found (unbalanced events, crossed transfers, bad resolutions).",
)


def record_verify(report: VerifyReport) -> None:
    VERIFY_MISMATCHES.set(len(report.mismatches))
    VERIFY_PROBLEMS.set(len(report.problems))
