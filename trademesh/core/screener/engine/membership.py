"""A screen's results as the symbol set a follower runs (docs/screener.md, "Membership"): the rule
itself is trademesh.core.domain.screen_membership's, shared with the detector's screen-driven
strategies; here, a screen's own membership and a result taken into it."""

from __future__ import annotations

from trademesh.core.domain.screen_membership import MembershipChange, ScreenMembership
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.evaluate import ScreenResult

__all__ = ["MembershipChange", "ScreenMembership", "membership_of", "take"]


def membership_of(screen: Screen, top: int | None = None) -> ScreenMembership:
    """The membership of a screen's first `top` (all its top N when None), held as it says."""
    return ScreenMembership(min(top or screen.top, screen.top), screen.hold_ns)


def take(membership: ScreenMembership, result: ScreenResult) -> MembershipChange:
    """The set after `result` (its top, in rank order, at its computed time)."""
    return membership.apply(result.symbols, result.computed_ns)
