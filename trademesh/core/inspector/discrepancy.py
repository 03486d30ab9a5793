"""When a difference between two accounts of the same thing (a venue's balance and the ledger's
books) is an alarm rather than a transient mismatch (a fill the venue reports before the books
hear of it).

A discrepancy is counted by what it is, not by where it is: the same difference seen on
`repeats` checks in a row is an alarm; two different differences in a row are two transient
mismatches, not one alarm. So that a difference that keeps changing (books stuck while the account
trades on) is not hidden for ever, `unsettled` checks in a row without agreement are an alarm too.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

__all__ = ["Discrepancies"]

K = TypeVar("K", bound=Hashable)


@dataclass
class _Seen:
    difference: Decimal
    repeats: int = 1  # checks in a row with this same difference
    unsettled: int = 1  # checks in a row with any difference


class Discrepancies(Generic[K]):
    def __init__(self, repeats: int = 2, unsettled: int = 6) -> None:
        self.repeats = repeats
        self.unsettled = unsettled
        self._seen: dict[K, _Seen] = {}

    def check(self, key: K, difference: Decimal) -> bool:
        """One check's difference at `key` (0: they agree); whether it is an alarm now."""
        if difference == 0:
            self._seen.pop(key, None)
            return False
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen(difference)
        elif seen.difference == difference:
            seen.repeats += 1
            seen.unsettled += 1
        else:
            seen.difference, seen.repeats = difference, 1
            seen.unsettled += 1
        return seen.repeats >= self.repeats or seen.unsettled >= self.unsettled
