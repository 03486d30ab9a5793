"""The order tests/workers.py hands tests out in: groups largest first, the exclusive group last."""

from __future__ import annotations

from tests.workers import EXCLUSIVE, run_order


def test_groups_go_largest_first_together_and_the_exclusive_group_last() -> None:
    ids = ["a::lone", "b::x1", "c::rate", "b::x2", "d::p1", "d::p2", "d::p3", "e::slow", "f::lone"]
    groups = {"b::x1": "b", "b::x2": "b", "c::rate": EXCLUSIVE, "e::slow": EXCLUSIVE}
    groups |= {f"d::p{n}": "tests/e2e" for n in (1, 2, 3)}
    assert run_order(ids, groups) == [
        "d::p1", "d::p2", "d::p3",  # the largest group first
        "b::x1", "b::x2",
        "a::lone", "f::lone",  # lone tests in their collected order
        "c::rate", "e::slow",  # the exclusive ones, together, last
    ]  # fmt: skip


def test_without_groups_the_collected_order_stays() -> None:
    ids = [f"t::{n}" for n in range(5)]
    assert run_order(ids, {}) == ids
