"""A screen-driven strategy's patches (docs/detector.md, "Screen-driven strategies"): the screen's
results in, which symbols' patches start and which retire out. Pure: each result carries its
time (the evaluation's, `computed_ns`) and a position is asked of a callable, so the live shell
(trademesh.core.detector.screen_feed) and the backtest (trademesh.core.backtest.screens) decide alike.

- The set is the membership's (trademesh.core.domain.screen_membership): the first `top` symbols of
  each result, each held `min_hold_s` after it entered and kept out as long after it left; the
  strategy's top and hold where its file sets them, else those the results carry (the screen's).
- A symbol that enters the set starts its patch.
- A symbol that leaves retires its patch at once when the strategy's position there is flat.
  While one is open, or not known yet (the inspector not heard since the start), the patch goes
  on as *leaving*: its exits still pass (position requests: close, reduce, flip; the inspector's
  protective orders are at the venue anyway), its entries (signals) are muted, and it retires
  once the position is flat (`settle`). A leaving patch holds no place of the set: a newcomer
  starts beside it. A leaving symbol that enters again is a member again.
- Before the first result, the patches there are (restored at a restart) run on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from trademesh.core.detector.strategy_file import ScreenSymbols
from trademesh.core.domain.screen_membership import ScreenMembership

__all__ = ["Open", "Ranking", "RosterChange", "ScreenRoster"]

_NS = 1_000_000_000

# symbol -> whether the strategy's position there is open; None while it is not known.
Open = Callable[[str], bool | None]


@dataclass(frozen=True, slots=True)
class Ranking:
    """What a roster reads of one result of the screen: its venue, time, top (rank order), and
    the screen's own top and hold (the defaults)."""

    screen: str
    venue: str
    computed_ns: int
    symbols: tuple[str, ...]
    top_n: int
    hold_ns: int


@dataclass(frozen=True, slots=True)
class RosterChange:
    """The patches to start and to retire now (each sorted), and the symbols that left the set
    with a position open (their patches go on, muted, until it is flat)."""

    at_ns: int
    start: tuple[str, ...] = ()
    retire: tuple[str, ...] = ()
    leaving: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.start or self.retire or self.leaving)


class ScreenRoster:
    def __init__(self, venue: str, screen: ScreenSymbols, is_open: Open, running: Iterable[str] = ()) -> None:
        self.venue, self.screen = venue, screen
        self._is_open = is_open
        self.running: set[str] = set(running)  # symbols whose patch runs: members and leaving
        self.leaving: set[str] = set()
        self.foreign = 0  # results of another venue than the strategy's: not followed
        self._membership: ScreenMembership | None = None
        self._last_ns: int | None = None

    @property
    def members(self) -> tuple[str, ...]:
        """The set, in the order its symbols entered (empty before the first result)."""
        return () if self._membership is None else self._membership.members

    def on_results(self, rankings: Sequence[Ranking]) -> RosterChange | None:
        """The set after these results, in time order (one live; the stream's retained ones at
        a start); what to start and retire then. None when none of them is taken: another
        venue's, or not after the last taken (a repeat)."""
        taken = None
        for ranking in rankings:
            if ranking.venue != self.venue:
                self.foreign += 1
            elif self._last_ns is None or ranking.computed_ns > self._last_ns:
                self._last_ns = taken = ranking.computed_ns
                self._membership_for(ranking).apply(ranking.symbols, ranking.computed_ns)
        return None if taken is None else self._reconcile(taken)

    def settle(self, at_ns: int) -> RosterChange:
        """The leaving patches whose position is flat now, to retire."""
        return self._reconcile(at_ns) if self._membership is not None else RosterChange(at_ns)

    def _membership_for(self, ranking: Ranking) -> ScreenMembership:
        wanted = self.screen.top or ranking.top_n
        capacity = max(1, min(wanted, ranking.top_n))
        hold_s = self.screen.min_hold_s
        hold_ns = ranking.hold_ns if hold_s is None else hold_s * _NS
        if self._membership is None:
            self._membership = ScreenMembership(capacity, hold_ns)
        else:  # the screen's top or hold changed (its file, then the Screener restarted)
            self._membership.capacity, self._membership.hold_ns = capacity, hold_ns
        return self._membership

    def _reconcile(self, at_ns: int) -> RosterChange:
        members = set(self.members)
        start = members - self.running
        self.leaving -= members  # back in the set
        gone = self.running - members - self.leaving
        newly = {symbol for symbol in gone if self._is_open(symbol) is not False}
        self.leaving |= newly
        retire = (gone - newly) | {symbol for symbol in self.leaving if self._is_open(symbol) is False}
        self.leaving -= retire
        self.running = (self.running | start) - retire
        return RosterChange(at_ns, tuple(sorted(start)), tuple(sorted(retire)), tuple(sorted(newly)))
