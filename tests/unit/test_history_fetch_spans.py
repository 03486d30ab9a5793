"""The spans a download asks a venue for, from the ranges a series does not hold
(trademesh.core.history.download.fetch_spans): neighbouring holes join up to a page of candles."""

from __future__ import annotations

from trademesh.core.history.coverage import Hole
from trademesh.core.history.download import fetch_spans

M = 60 * 10**9  # a minute
PAGE = 1000 * M


def test_holes_within_a_page_are_asked_together_and_those_beyond_it_alone() -> None:
    missing = [Hole(0, 10 * M), Hole(500 * M, 501 * M), Hole(999 * M, 1000 * M), Hole(1001 * M, 1002 * M)]
    assert fetch_spans(missing, PAGE) == [Hole(0, 1000 * M), Hole(1001 * M, 1002 * M)]


def test_a_hole_longer_than_a_page_is_one_span_paged_by_the_download() -> None:
    missing = [Hole(0, 5000 * M), Hole(5001 * M, 5002 * M)]
    assert fetch_spans(missing, PAGE) == [Hole(0, 5000 * M), Hole(5001 * M, 5002 * M)]


def test_many_short_holes_cost_a_span_a_page_not_one_each() -> None:
    missing = [Hole(n * 10 * M, (n * 10 + 1) * M) for n in range(1000)]  # a minute in ten missing
    spans = fetch_spans(missing, PAGE)
    assert len(spans) == 10
    assert spans[0] == Hole(0, 991 * M) and spans[-1] == Hole(9000 * M, 9991 * M)
    assert fetch_spans([], PAGE) == []
