"""A patch's lifecycle: draft -> active -> paused -> archived, and errored when a module raised."""

from __future__ import annotations

import enum

__all__ = ["EDITABLE", "PatchState", "allowed"]


class PatchState(enum.Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"
    ERRORED = "errored"


_NEXT: dict[PatchState, frozenset[PatchState]] = {
    PatchState.DRAFT: frozenset({PatchState.ACTIVE, PatchState.ARCHIVED}),
    PatchState.ACTIVE: frozenset({PatchState.PAUSED, PatchState.ARCHIVED, PatchState.ERRORED}),
    PatchState.PAUSED: frozenset({PatchState.ACTIVE, PatchState.ARCHIVED}),
    PatchState.ERRORED: frozenset({PatchState.DRAFT, PatchState.ACTIVE, PatchState.ARCHIVED}),
    PatchState.ARCHIVED: frozenset(),
}

# States in which modules and cables may change (parameters may change in any but archived).
EDITABLE = frozenset({PatchState.DRAFT, PatchState.PAUSED, PatchState.ERRORED})


def allowed(old: PatchState, new: PatchState) -> bool:
    return new in _NEXT[old]
