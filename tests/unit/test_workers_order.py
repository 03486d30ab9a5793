"""The order tests/workers.py hands tests out in: groups largest first, the exclusive group last."""

from __future__ import annotations

from pathlib import Path

from tests.workers import EXCLUSIVE, measured_seconds, run_order


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


def test_measured_seconds_put_the_longest_work_first() -> None:
    """A lone test of 90 s (a whole `trademesh up`) goes before a group of three quick ones,
    which counting tests put first; an unlisted test counts half a second."""
    ids = ["a::quick1", "a::quick2", "a::quick3", "b::up", "c::new", "d::rate"]
    groups = {f"a::quick{n}": "a" for n in (1, 2, 3)} | {"d::rate": EXCLUSIVE}
    seconds = {"a::quick1": 2.0, "a::quick2": 1.0, "b::up": 90.0, "d::rate": 200.0}
    assert run_order(ids, groups, seconds) == [
        "b::up", "a::quick1", "a::quick2", "a::quick3", "c::new", "d::rate",
    ]  # fmt: skip


def test_the_durations_file_is_read_and_a_bad_one_is_nothing(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"t::a": 3.5}')
    bad.write_text("[not json")
    assert measured_seconds(good) == {"t::a": 3.5}
    assert measured_seconds(bad) == {} and measured_seconds(tmp_path / "missing.json") == {}
