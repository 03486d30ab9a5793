"""The change events of a patch: an append-only record the shell persists.

Every change carries the patch's version after it and the (injected) time it was made.
Structural and parameter changes bump the version; state changes do not (they do not change
what the patch computes), so a signal's patch version names the definition that made it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CableConnected",
    "CableDisconnected",
    "Change",
    "ModuleAdded",
    "ModuleRemoved",
    "ParamSet",
    "PatchCreated",
    "PatchDeleted",
    "PatchUpdated",
    "StateChanged",
]

ParamValue = int | float | bool | str


@dataclass(frozen=True, slots=True)
class PatchCreated:
    patch_id: str
    version: int
    at_ns: int
    strategy_id: str
    venue: str
    symbol: str
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class PatchUpdated:
    """Name, description or market (venue and symbol) changed: the values after the change."""

    patch_id: str
    version: int
    at_ns: int
    name: str
    description: str
    venue: str
    symbol: str


@dataclass(frozen=True, slots=True)
class PatchDeleted:
    """The patch is gone (its version is the last it had)."""

    patch_id: str
    version: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class ModuleAdded:
    patch_id: str
    version: int
    at_ns: int
    module_id: str
    type: str
    params: tuple[tuple[str, ParamValue], ...]


@dataclass(frozen=True, slots=True)
class ModuleRemoved:
    patch_id: str
    version: int
    at_ns: int
    module_id: str
    cables: tuple[str, ...]  # removed with it


@dataclass(frozen=True, slots=True)
class CableConnected:
    patch_id: str
    version: int
    at_ns: int
    cable: str


@dataclass(frozen=True, slots=True)
class CableDisconnected:
    patch_id: str
    version: int
    at_ns: int
    cable: str


@dataclass(frozen=True, slots=True)
class ParamSet:
    patch_id: str
    version: int
    at_ns: int
    module_id: str
    name: str
    value: ParamValue


@dataclass(frozen=True, slots=True)
class StateChanged:
    patch_id: str
    version: int
    at_ns: int
    old: str
    new: str
    reason: str = ""


Change = (
    PatchCreated
    | PatchUpdated
    | PatchDeleted
    | ModuleAdded
    | ModuleRemoved
    | CableConnected
    | CableDisconnected
    | ParamSet
    | StateChanged
)
