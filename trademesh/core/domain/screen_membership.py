"""A screen's results turned into the symbol set a detector runs patches for, without flapping
(docs/screener.md, "Membership").

The rule, with `hold` the screen's min_hold_s and `capacity` its top N (or fewer):

- A symbol in the result's first `capacity` enters when a place is free (the set never holds more than
  `capacity`), entrants taken in rank order.
- A member stays at least `hold` after entering, even if it drops out of the top; once held
  that long it leaves at the first result whose top does not name it.
- A symbol that left stays out at least `hold` before it can enter again.

So a symbol near the N-th place, in and out on every scan, changes the set at most once per
`hold` each way; the cost is that a new leader may wait up to `hold` for a place held by a
member that dropped out. Pure: each result carries its time (ScreenResult.computed_ns).

In the domain because two services follow a screen this way: the Screener's engine
(trademesh.core.screener.engine) and the detector, whose screen-driven strategies take their symbols from
a screen's results on the bus (trademesh.core.detector.screens); services meet through contracts, not
each other's code, so the one rule both use sits below both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MembershipChange", "ScreenMembership"]


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """What one result changed: the symbols added and removed (each sorted) and the members
    after it, in the order they entered."""

    at_ns: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    members: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


class ScreenMembership:
    def __init__(self, capacity: int, hold_ns: int) -> None:
        if capacity < 1 or hold_ns < 0:
            raise ValueError("a membership holds at least one symbol, for a hold of 0 or more")
        self.capacity, self.hold_ns = capacity, hold_ns
        self._entered: dict[str, int] = {}  # member -> when it entered (insertion: entry order)
        self._left: dict[str, int] = {}  # symbol -> when it last left
        self._last_ns: int | None = None

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self._entered)

    def apply(self, wanted: Sequence[str], now_ns: int) -> MembershipChange:
        """The set after a scan whose top is `wanted` (rank order) at `now_ns`; results must come
        in time order (ValueError otherwise: a hold is measured on their clock)."""
        if self._last_ns is not None and now_ns < self._last_ns:
            raise ValueError(f"a result of {now_ns} after one of {self._last_ns}")
        self._last_ns = now_ns
        wanted = wanted[: self.capacity]  # "top 5 of a screen of 10": its first 5
        top = set(wanted)
        removed = [s for s, since in self._entered.items() if s not in top and now_ns - since >= self.hold_ns]
        for symbol in removed:
            del self._entered[symbol]
            self._left[symbol] = now_ns
        added = []
        for symbol in wanted:
            if len(self._entered) >= self.capacity:
                break
            if symbol not in self._entered and self._may_enter(symbol, now_ns):
                self._entered[symbol] = now_ns
                added.append(symbol)
        return MembershipChange(now_ns, tuple(sorted(added)), tuple(sorted(removed)), self.members)

    def _may_enter(self, symbol: str, now_ns: int) -> bool:
        left = self._left.get(symbol)
        if left is None or now_ns - left >= self.hold_ns:
            self._left.pop(symbol, None)
            return True
        return False
