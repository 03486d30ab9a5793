"""The last Verify's findings as gauges: set to what it found, back to 0 once the books agree."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import REGISTRY

from trademesh.core.ledger.metrics import record_verify
from trademesh.core.ledger.verify import BalanceMismatch, Problem, VerifyReport


def _shown() -> tuple[float | None, float | None]:
    return (
        REGISTRY.get_sample_value("trademesh_ledger_verify_mismatches"),
        REGISTRY.get_sample_value("trademesh_ledger_verify_problems"),
    )


def test_a_verify_shows_its_mismatches_and_problems_until_the_next() -> None:
    mismatches = (
        BalanceMismatch("1", "debits_posted", Decimal(5), Decimal(7)),
        BalanceMismatch("2", "row", None, Decimal(1)),
    )
    problem = Problem("unbalanced_event", "event 9", "debits 5, credits 4")
    record_verify(VerifyReport(3, 10, 4, mismatches, (problem,)))
    assert _shown() == (2.0, 1.0)
    record_verify(VerifyReport(3, 10, 4, (), ()))
    assert _shown() == (0.0, 0.0)
