"""The timing of protective orders, per position (protect.py plans what they are):

- a refused protective order is placed again `protect.retry_ms` after the refusal, doubled for
  each refusal in a row (at most _MAX_RETRY_NS): not at once (a refusal is often the venue ahead
  of us, a fill on its way that lands before the next try) and not at the market's next mark
  (a quiet market never marks: a position stayed naked for 13.4 s);
- what an entry still filling adds to a position is covered together, `protect.coalesce_ms`
  after the first such fill at the latest, or at once when the entry is done (a resize per fill
  sent 54 orders and cancels for an entry in 14 parts);
- a re-price of a position's orders (its levels moved: a new entry, the trailing stop) is made
  at most once per `protect.coalesce_ms`: the orders at the levels before protect meanwhile,
  and what moved in the window is amended together at its end (a burst of entries amended
  every layer at every entry: cancels and placements piling up behind each other, the newest
  entry's fills uncovered for seconds on a loaded machine);
- a position without its whole pair for longer than `protect.unprotected_max_ms` is said (a
  risk event, once), and said again when it is protected or closed.

Each is a deadline in the core's injected time; the core asks to be woken at the earliest
(`wake_ns`) and does what is due at any input at or after it (the shell journals a timer entry
then, a backtest runs one on its simulated clock). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.inspector.engine.positions import Key

__all__ = ["Gap", "Guard", "refused_for_the_request"]

_MS = 1_000_000
_MAX_RETRY_NS = 30_000 * _MS
# The venue refused the request itself (its size, price or notional against the instrument's
# rules): the shell writes a refusal's reason as "<gRPC code>: <details>" (trademesh.core.inspector.convert).
_REQUEST_REFUSED = "INVALID_ARGUMENT"


def refused_for_the_request(reason: str) -> bool:
    """A refusal the inspector caused itself (the order broke the venue's rules), not one of the
    venue's state (the position, funds): it is not counted toward the stand-down."""
    return reason.startswith(_REQUEST_REFUSED)


@dataclass
class Gap:
    """A position without its whole protective pair: since when, and whether it was said."""

    since_ns: int
    due_ns: int
    reported: bool = False


class Guard:
    def __init__(self) -> None:
        self.retry_at: dict[Key, int] = {}  # no protective placement before this
        self.refusals: dict[Key, int] = {}  # tries refused in a row (the backoff's step)
        self.reasons: dict[Key, str] = {}  # the last refusal's reason
        self.coalesce_until: dict[Key, int] = {}  # growth held until then (passed: grow now)
        self.reprice_held: dict[Key, int] = {}  # the last re-price's window ends then
        self.gaps: dict[Key, Gap] = {}
        self.now_ns = 0  # the latest input's time

    # ---- refusals

    def refused(self, key: Key, reason: str, now_ns: int, retry_ms: int) -> int:
        """A try refused: the next placement waits; the wait in ns."""
        step = self.refusals[key] = self.refusals.get(key, 0) + 1
        delay: int = min(retry_ms * _MS << min(step - 1, 16), _MAX_RETRY_NS)
        self.retry_at[key] = now_ns + delay
        self.reasons[key] = reason
        return delay

    def accepted(self, key: Key) -> None:
        """A protective order of the position was accepted: the backoff starts over."""
        self.refusals.pop(key, None)

    def waiting(self, key: Key) -> bool:
        return self.retry_at.get(key, 0) > self.now_ns

    # ---- coalescing

    def hold(self, key: Key, coalesce_ms: int) -> bool:
        """Whether growth of the position waits (the first call opens the window)."""
        until = self.coalesce_until.setdefault(key, self.now_ns + coalesce_ms * _MS)
        return self.now_ns < until

    def grown(self, key: Key) -> None:
        self.coalesce_until.pop(key, None)

    def may_reprice(self, key: Key) -> bool:
        return self.reprice_held.get(key, 0) <= self.now_ns

    def repriced(self, key: Key, coalesce_ms: int) -> None:
        """A re-price went out: the next waits for the window's end (woken then)."""
        if coalesce_ms > 0:
            self.reprice_held[key] = self.now_ns + coalesce_ms * _MS

    # ---- gaps

    def uncovered(self, key: Key, bound_ms: int) -> Gap:
        gap = self.gaps.get(key)
        if gap is None:
            gap = self.gaps[key] = Gap(self.now_ns, self.now_ns + bound_ms * _MS)
        return gap

    def covered(self, key: Key) -> Gap | None:
        """The position is protected (or closed): its gap ends; the gap returned."""
        return self.gaps.pop(key, None)

    def flat(self, key: Key) -> None:
        """The position closed: nothing of it carries over to the next one."""
        for table in (self.retry_at, self.refusals, self.reasons, self.coalesce_until, self.reprice_held):
            table.pop(key, None)

    def clear(self) -> None:
        for table in (self.retry_at, self.refusals, self.reasons, self.coalesce_until, self.reprice_held):
            table.clear()
        self.gaps.clear()

    # ---- time

    def due(self, now_ns: int) -> list[Key]:
        """The positions with a deadline at or before `now_ns` (a retry's, a window's end, a
        re-price's window's end), each once: a passed retry is dropped, a passed window kept as
        passed (0: growth no longer waits)."""
        self.now_ns = max(self.now_ns, now_ns)
        if not (self.retry_at or self.coalesce_until or self.reprice_held):
            return []
        keys = {k for k, at in self.retry_at.items() if at <= now_ns}
        for key in keys:
            del self.retry_at[key]
        ended = [k for k, at in self.reprice_held.items() if at <= now_ns]
        for key in ended:
            del self.reprice_held[key]
        keys.update(ended)
        for key, at in self.coalesce_until.items():
            if 0 < at <= now_ns:
                self.coalesce_until[key] = 0
                keys.add(key)
        return sorted(keys)

    def overdue(self) -> list[Key]:
        """The gaps past their bound and not said yet."""
        if not self.gaps:
            return []
        return sorted(k for k, g in self.gaps.items() if not g.reported and g.due_ns <= self.now_ns)

    def wake_ns(self) -> int | None:
        """The earliest deadline still ahead of the latest input, if any."""
        if not (self.retry_at or self.coalesce_until or self.reprice_held or self.gaps):
            return None  # the common case, asked at every step of a backtest
        now = self.now_ns
        ahead = [at for at in self.retry_at.values() if at > now]
        ahead += [at for at in self.coalesce_until.values() if at > now]
        ahead += [at for at in self.reprice_held.values() if at > now]
        ahead += [g.due_ns for g in self.gaps.values() if not g.reported and g.due_ns > now]
        return min(ahead) if ahead else None
