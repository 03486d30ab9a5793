"""The kit's report: a table a person reads, or JSON for a machine."""

from __future__ import annotations

import json

from trademesh.core.venue_check.results import CheckOutcome
from trademesh.core.venue_check.runner import Report

__all__ = ["as_json", "as_text"]

_WORD = {CheckOutcome.PASS: "PASS", CheckOutcome.FAIL: "FAIL", CheckOutcome.SKIP: "SKIP"}


def as_text(report: Report) -> str:
    width = max((len(r.name) for r in report.results), default=0)
    lines = [f"{_WORD[r.outcome]}  {r.name:<{width}}  {r.reason}" for r in report.results]
    lines += [f"note: {note}" for note in report.notes]
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _summary(report: Report) -> str:
    counts = (
        f"{report.count(CheckOutcome.PASS)} passed, {report.count(CheckOutcome.FAIL)} failed, "
        f"{report.count(CheckOutcome.SKIP)} skipped"
    )
    verdict = "conforms" if report.conforms else "does not conform"
    return (
        f"venue {report.venue} at {report.address} {verdict} to the venue contract "
        f"({counts}; {report.duration_s:.1f} s)"
    )


def as_json(report: Report) -> str:
    document = {
        "address": report.address,
        "venue": report.venue,
        "symbol": report.symbol,
        "conforms": report.conforms,
        "passed": report.count(CheckOutcome.PASS),
        "failed": report.count(CheckOutcome.FAIL),
        "skipped": report.count(CheckOutcome.SKIP),
        "duration_s": round(report.duration_s, 3),
        "checks": [
            {
                "name": r.name,
                "outcome": r.outcome.value,
                "reason": r.reason,
                "duration_s": round(r.duration_s, 3),
            }
            for r in report.results
        ],
        "notes": report.notes,
    }
    return json.dumps(document, indent=2) + "\n"
