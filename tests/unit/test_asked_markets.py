"""The markets intents asked about (trademesh.core.inspector.asked): at most `most` beyond the needed
ones, the least recently asked dropped first, each forgotten `idle_s` after it was last asked."""

from __future__ import annotations

from trademesh.core.inspector.asked import AskedMarkets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_past_the_bound_the_least_recently_asked_market_not_needed_goes_first() -> None:
    clock = Clock()
    asked = AskedMarkets(clock, idle_s=60, most=2)
    held = {("sim", "A")}
    assert asked.touch(("sim", "A"), held) == []
    assert asked.touch(("sim", "B"), held) == []
    assert asked.touch(("sim", "C"), held) == []
    assert asked.touch(("sim", "B"), held) == []  # asked again: the most recent now
    assert asked.touch(("sim", "D"), held) == [("sim", "C")]  # A is held: never dropped
    assert [asked.holds(("sim", s)) for s in "ABCD"] == [True, True, False, True]


def test_a_market_not_asked_about_within_the_idle_time_is_forgotten_unless_needed() -> None:
    clock = Clock()
    asked = AskedMarkets(clock, idle_s=60, most=10)
    asked.touch(("sim", "A"), set())
    asked.touch(("sim", "B"), set())
    clock.now = 30
    asked.touch(("sim", "B"), set())
    clock.now = 61
    asked.expire({("sim", "X")})
    assert (asked.holds(("sim", "A")), asked.holds(("sim", "B"))) == (False, True)
    clock.now = 200
    asked.expire({("sim", "B")})  # needed (a position there): kept however idle
    assert asked.holds(("sim", "B")) and len(asked) == 1
