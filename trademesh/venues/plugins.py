"""Venues from installed packages: the entry points of the group `trademesh.venues`.

A package adds a venue with one line in its pyproject.toml (docs/venue-adding.md, "Adding a venue as a
package"):

    [project.entry-points."trademesh.venues"]
    acme = "acme_venue"

The entry point's name is the venue's; its value names the module that exposes `create_venue`,
as a built-in venue's module does (trademesh/venues/registry.py). Only the names are read here: no module
is imported until its venue is asked for, so starting one venue never imports another's.

Trademesh's own distribution declares its built-in venues in the same group (pyproject.toml);
their ports and summaries are trademesh/venues/registry.py's table, which a checkout that is not installed
reads alone.

An entry point is refused, with one line naming its package, when its name is a built-in venue's,
when two packages declare the name, when the name could not name a container or a Kubernetes
object, or when its value is not a plain module.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from trademesh.core.platform.errors import FailedPrecondition

__all__ = [
    "GROUP",
    "OWN_DISTRIBUTION",
    "PLUGIN_PORTS",
    "Declared",
    "Found",
    "PluginRefusal",
    "given_ports",
    "installed",
    "scan",
]

GROUP = "trademesh.venues"
# The distribution whose entry points are the built-in venues (trademesh/venues/registry.py's table).
OWN_DISTRIBUTION = "trademesh"
# The ports given to plug-in venues that declare none (their metrics: the same + 4000). No
# built-in venue or core service listens here; a port a plug-in declares lies outside it.
PLUGIN_PORTS = range(5200, 5300)
# A venue's name is also its container's (venue-<name>) and its Kubernetes objects': lower-case
# letters, digits and inner hyphens, a letter first; at most 40 (a bus stream's venue part).
_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class Declared:
    """A plug-in venue as its package declares it; the module is not imported yet."""

    name: str
    module: str
    package: str  # "acme-venue 0.1.0"
    summary: str  # the package's one-line description


@dataclass(frozen=True)
class PluginRefusal:
    name: str
    package: str
    reason: str

    def __str__(self) -> str:
        return f"venue {self.name!r} of package {self.package}: {self.reason}"


@dataclass(frozen=True)
class Found:
    plugins: Mapping[str, Declared]  # by name, in name order
    refused: tuple[PluginRefusal, ...]
    own: Mapping[str, str]  # trademesh's own entry points: venue name -> module


def _package(entry: importlib.metadata.EntryPoint) -> tuple[str, str, str]:
    """(distribution name, "name version", summary) of the package that declares `entry`."""
    dist = entry.dist
    if dist is None:
        return "", "(unknown)", ""
    name = dist.metadata["Name"] or ""
    return name, f"{name} {dist.version}", dist.metadata["Summary"] or ""


def _problem(entry: importlib.metadata.EntryPoint, built_in: Collection[str]) -> str | None:
    if entry.name in built_in:
        return "a built-in venue has this name; the package's venue is not loaded (rename it)"
    if not _NAME.fullmatch(entry.name):
        return (
            "not a venue name (1-40 of lower-case letters, digits and inner hyphens, a letter "
            "first: it names the venue's container and Kubernetes objects)"
        )
    if not _MODULE.fullmatch(entry.value):  # no `:attribute`, no `[extras]`
        return f'the value {entry.value!r} is not a module (`name = "package.module"`)'
    return None


def scan(entries: Iterable[importlib.metadata.EntryPoint], built_in: Collection[str]) -> Found:
    """The plug-in venues and refusals among `entries` (the group's entry points)."""
    own: dict[str, str] = {}
    candidates: dict[str, list[Declared]] = {}
    refused: list[PluginRefusal] = []
    for entry in entries:
        distribution, package, summary = _package(entry)
        if distribution.lower() == OWN_DISTRIBUTION:
            own[entry.name] = entry.value
            continue
        problem = _problem(entry, built_in)
        if problem is not None:
            refused.append(PluginRefusal(entry.name, package, problem))
            continue
        candidates.setdefault(entry.name, []).append(Declared(entry.name, entry.value, package, summary))
    plugins: dict[str, Declared] = {}
    for name in sorted(candidates):
        declared = candidates[name]
        if len(declared) == 1:
            plugins[name] = declared[0]
            continue
        packages = ", ".join(d.package for d in declared)
        refused += [PluginRefusal(name, d.package, f"packages {packages} all declare it") for d in declared]
    return Found(plugins, tuple(refused), own)


@functools.cache
def installed(built_in: frozenset[str]) -> Found:
    """The group as installed here (read once per process)."""
    return scan(importlib.metadata.entry_points(group=GROUP), built_in)


def given_ports(names: Iterable[str], taken: Collection[int] = ()) -> dict[str, int]:
    """The port of each plug-in venue that declares none: a slot of PLUGIN_PORTS from its name's
    hash, the next free one when an earlier name (in name order) holds it. It stays put as long
    as no name before it claims its slot; a venue that must never move declares its port."""
    used = set(taken)
    ports: dict[str, int] = {}
    for name in sorted(names):
        first = zlib.crc32(name.encode()) % len(PLUGIN_PORTS)
        free = (PLUGIN_PORTS[(first + step) % len(PLUGIN_PORTS)] for step in range(len(PLUGIN_PORTS)))
        port = next((p for p in free if p not in used), None)
        if port is None:
            last = PLUGIN_PORTS.stop - 1
            raise FailedPrecondition(f"no port left in {PLUGIN_PORTS.start}-{last} for the venue {name!r}")
        ports[name] = port
        used.add(port)
    return ports
