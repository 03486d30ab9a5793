"""The checks, by name, in the order they run: one named check per behaviour of the contract.

Each check is an async function of the Kit (the venue under test) that returns the reason it
passed, in a line, or raises CheckFailed / CheckSkipped (trademesh.core.venue_check.results). The order is
the modules' import order (trademesh.core.venue_check.checks): reads first, then orders, the dead-man
switch, and Drain last (a drained venue takes nothing more).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trademesh.core.venue_check.results import BadTarget

if TYPE_CHECKING:
    from trademesh.core.venue_check.kit import Kit

__all__ = ["CHECKS", "CheckFunction", "VenueCheck", "check", "select"]

CheckFunction = Callable[["Kit"], Awaitable[str]]

# Most checks are a few calls; one that waits on the venue (a stream, the dead-man switch) says so.
DEFAULT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class VenueCheck:
    name: str
    # The behaviour it proves, in a line (docs/venue-contract.md has a section per check).
    summary: str
    run: CheckFunction
    # Past this the check fails ("no answer within ..."): a venue that hangs never hangs the kit.
    timeout_s: float = DEFAULT_TIMEOUT_S


CHECKS: dict[str, VenueCheck] = {}


def check(
    name: str, summary: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Callable[[CheckFunction], CheckFunction]:
    """Registers the decorated function as the check `name`."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = VenueCheck(name, summary, function, timeout_s)
        return function

    return register


def select(only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[VenueCheck]:
    """The checks to run, in their order: `only` these (all when empty), less `skip`.
    BadTarget naming any name that is no check."""
    _known(only, "--only")
    _known(skip, "--skip")
    chosen = [c for c in CHECKS.values() if (not only or c.name in only) and c.name not in skip]
    if not chosen:
        raise BadTarget("no check left to run after --only and --skip")
    return chosen


def _known(names: Iterable[str], option: str) -> None:
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise BadTarget(
            f"{option}: no check named {', '.join(map(repr, unknown))}; checks: {', '.join(CHECKS)}"
        )
