"""A screen's membership (trademesh.core.domain.screen_membership): at most N symbols, each held at
least `hold` after entering and kept out at least `hold` after leaving, so a symbol at the N-th
place does not flap."""

from __future__ import annotations

import pytest

from tests.screener_support import NOW, instrument
from trademesh.core.domain.screen_membership import ScreenMembership
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.engine.membership import membership_of, take
from trademesh.core.screener.screen_file import SCREENS_DIR, load_screen

S = 10**9
HOLD = 300 * S


def test_entering_and_leaving_after_the_hold() -> None:
    membership = ScreenMembership(capacity=2, hold_ns=HOLD)
    first = membership.apply(["A", "B", "C"], 0)
    assert (first.added, first.removed, first.members) == (("A", "B"), (), ("A", "B"))
    assert not membership.apply(["A", "B"], 60 * S)  # nothing changed: falsy
    # B drops out after 60 s: held until 300 s after it entered.
    held = membership.apply(["A", "C"], 120 * S)
    assert (held.added, held.removed, held.members) == ((), (), ("A", "B"))  # no place for C yet
    gone = membership.apply(["A", "C"], HOLD)
    assert (gone.added, gone.removed, gone.members) == (("C",), ("B",), ("A", "C"))


def test_a_symbol_that_left_stays_out_for_the_hold() -> None:
    membership = ScreenMembership(capacity=2, hold_ns=HOLD)
    membership.apply(["A", "B"], 0)
    membership.apply(["A", "C"], HOLD)  # B leaves at 300 s, C enters
    membership.apply(["A"], 2 * HOLD)  # C leaves at 600 s
    back = membership.apply(["A", "B"], 2 * HOLD + 60 * S)  # B left at 300 s: 360 s ago, may enter
    assert back.added == ("B",)
    membership.apply(["A"], 3 * HOLD + 60 * S)  # B leaves again at 960 s
    refused = membership.apply(["A", "B"], 3 * HOLD + 120 * S)
    assert refused.added == () and refused.members == ("A",)
    later = membership.apply(["A", "B"], 4 * HOLD + 60 * S)
    assert later.added == ("B",)


def test_a_symbol_flapping_at_the_last_place_changes_the_set_at_most_once_per_hold() -> None:
    membership = ScreenMembership(capacity=3, hold_ns=HOLD)
    changes = 0
    for scan in range(60):  # one scan a minute for an hour; X in the top every other minute
        wanted = ["A", "B", "X"] if scan % 2 == 0 else ["A", "B", "Y"]
        change = membership.apply(wanted, scan * 60 * S)
        changes += len(change.added) + len(change.removed)
        assert len(change.members) <= 3
    unheld = ScreenMembership(capacity=3, hold_ns=0)
    flaps = sum(
        len(c.added) + len(c.removed)
        for c in (
            unheld.apply(["A", "B", "X"] if s % 2 == 0 else ["A", "B", "Y"], s * 60 * S) for s in range(60)
        )
    )
    assert flaps == 2 + 2 * 59 + 1  # without a hold: X and Y swap on every scan
    assert changes == 3 + 2 * 11  # one swap per 5-minute hold, against 59 without


def test_entrants_fill_free_places_in_rank_order() -> None:
    membership = ScreenMembership(capacity=3, hold_ns=HOLD)
    membership.apply(["A"], 0)
    change = membership.apply(["D", "C", "A", "B"], 60 * S)
    assert change.added == ("C", "D") and change.members == ("A", "D", "C")


def test_results_must_come_in_time_order() -> None:
    membership = ScreenMembership(capacity=1, hold_ns=HOLD)
    membership.apply(["A"], 10)
    with pytest.raises(ValueError):
        membership.apply(["A"], 9)
    with pytest.raises(ValueError):
        ScreenMembership(capacity=0, hold_ns=HOLD)


def test_a_screens_results_drive_its_membership() -> None:
    screen = load_screen(SCREENS_DIR / "momentum.toml")
    membership = membership_of(screen, top=2)
    assert (membership.capacity, membership.hold_ns) == (2, 900 * S)
    ups = {
        name: [100 * (1 + step) ** i for i in range(25)]
        for name, step in (("A", 0.03), ("B", 0.02), ("C", 0.01))
    }
    result = evaluate(screen, [instrument(name, closes) for name, closes in ups.items()], NOW)
    assert result.symbols == ("A", "B", "C")
    change = take(membership, result)
    assert change.added == ("A", "B") and change.at_ns == NOW
