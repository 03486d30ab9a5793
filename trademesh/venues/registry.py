"""Every venue trademesh can run, by name: the built-in ones, one line each below, and those that
installed packages add (trademesh/venues/plugins.py: the entry points of the group `trademesh.venues`).

A venue module exposes `create_venue(config_path: Path | None, replay: ReplayOptions | None,
account: str | None) -> Venue` (an account's instance: docs/accounts.md); every built-in one, and
a plug-in's that wants `trademesh venue --symbols`, also takes `symbols: Sequence[str] | None`
(the symbols to serve instead of its config's; a plug-in's module without it refuses the flag).
A plug-in's module may also set `DEFAULT_PORT` (an int outside plugins.PLUGIN_PORTS; else it is
given one there) and `SUMMARY` (else its package's description). Modules load lazily: starting
one venue never imports another's dependencies, and a plug-in that fails to load is one line
naming its package, never a traceback, and never stops another venue.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, NotFound, TrademeshError
from trademesh.core.platform.service.registry import METRICS_PORT_OFFSET, SERVICES
from trademesh.venues.plugins import PLUGIN_PORTS, Declared, Found, PluginRefusal, given_ports, installed
from trademesh.venues.runtime.venue import Venue

if TYPE_CHECKING:
    from trademesh.venues.replay.server import ReplayOptions

__all__ = [
    "VENUES",
    "VenueEntry",
    "create_venue",
    "known_venue",
    "listing",
    "refusals",
    "venue_entry",
    "venue_names",
]


@dataclass(frozen=True)
class VenueEntry:
    name: str
    module: str
    default_port: int
    summary: str
    # The package that adds it ("acme-venue 0.1.0"); "" for a built-in venue.
    package: str = ""


# The built-in venues. pyproject.toml declares the same names and modules in the entry-point
# group (tests/unit/test_venue_plugins.py holds them equal); their ports and summaries are here.
VENUES: dict[str, VenueEntry] = {
    entry.name: entry
    for entry in [
        VenueEntry(
            "sim",
            "trademesh.venues.sim",
            5070,
            "built-in exchange: synthetic market, price-time matching engine",
        ),
        VenueEntry("binance", "trademesh.venues.binance", 5060, "Binance spot (ccxt.pro)"),
        VenueEntry("bybit", "trademesh.venues.bybit", 5061, "Bybit spot (ccxt.pro)"),
        VenueEntry("kraken", "trademesh.venues.kraken", 5062, "Kraken spot (ccxt.pro)"),
        VenueEntry("okx", "trademesh.venues.okx", 5063, "OKX spot (ccxt.pro)"),
        VenueEntry("coinbase", "trademesh.venues.coinbase", 5064, "Coinbase Advanced Trade spot (ccxt.pro)"),
        VenueEntry(
            "binanceusdm", "trademesh.venues.binanceusdm", 5065, "Binance USD-M perpetuals (ccxt.pro)"
        ),
        VenueEntry("okx-swap", "trademesh.venues.okx_swap", 5068, "OKX perpetual swaps (ccxt.pro)"),
        VenueEntry("deribit", "trademesh.venues.deribit", 5081, "Deribit derivatives (ccxt.pro)"),
    ]
}


def _found() -> Found:
    return installed(frozenset(VENUES))


def venue_names() -> list[str]:
    """The built-in venues, then the plug-ins in name order (no module imported)."""
    return [*VENUES, *_found().plugins]


def refusals() -> tuple[PluginRefusal, ...]:
    """The plug-in entry points refused (a name taken, not a module, ...)."""
    return _found().refused


def known_venue(name: str) -> str:
    """`name` when a venue has it; NotFound saying why a plug-in of that name is refused, or which
    venues there are."""
    if name in VENUES or name in _found().plugins:
        return name
    refused = [str(r) for r in refusals() if r.name == name]
    if refused:
        raise NotFound("; ".join(refused))
    raise NotFound(f"unknown venue {name!r}; known venues: {', '.join(sorted(venue_names()))}")


def venue_entry(name: str) -> VenueEntry:
    """A venue's entry; a plug-in's module is imported (FailedPrecondition, one line, if broken)."""
    built_in = VENUES.get(name)
    if built_in is not None:
        return built_in
    declared = _found().plugins.get(known_venue(name))
    assert declared is not None  # known_venue: a built-in or a plug-in
    return _plugin_entry(declared)


def create_venue(
    name: str,
    config_path: Path | None,
    replay: ReplayOptions | None = None,
    account: str | None = None,
    symbols: Sequence[str] | None = None,
) -> Venue:
    """The venue `name`, or one `account` of it, named `<name>.<account>` (docs/accounts.md);
    `symbols` (`trademesh venue --symbols`), when given, are the symbols it serves instead of its
    config's (a plug-in's only when its create_venue takes a `symbols` keyword)."""
    entry = venue_entry(name)
    module = importlib.import_module(entry.module)
    extra = {} if symbols is None else {"symbols": tuple(symbols)}
    if not entry.package:
        venue: Venue = module.create_venue(config_path, replay, account, **extra)
        return venue
    if extra and not _takes_symbols(module.create_venue):
        raise InvalidArgument.field(
            "symbols",
            f"venue {entry.name!r} of package {entry.package} takes no --symbols (its create_venue has "
            "no `symbols` parameter): its config names the symbols it serves",
        )
    try:
        made = module.create_venue(config_path, replay, account, **extra)
    except TrademeshError:
        raise
    except Exception as exc:  # a plug-in's bug: one line naming its package, not a traceback
        raise _broken(entry.name, entry.package, f"create_venue failed: {_one_line(exc)}") from exc
    if not isinstance(made, Venue):
        reason = f"create_venue returned a {type(made).__name__}, not a trademesh.venues.runtime.venue.Venue"
        raise _broken(entry.name, entry.package, reason)
    return made


def _takes_symbols(create: Any) -> bool:
    """Whether a plug-in's create_venue takes `symbols=` (a parameter of that name, or **kwargs)."""
    try:
        parameters = inspect.signature(create).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "symbols" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in parameters
    )


def listing() -> tuple[list[VenueEntry], list[str]]:
    """Every venue that loads (each plug-in's module imported), and one line per problem: a
    refused entry point, a plug-in that does not load, a port two plug-ins declare."""
    entries = list(VENUES.values())
    problems = [str(r) for r in refusals()]
    for name in _found().plugins:
        try:
            entries.append(venue_entry(name))
        except TrademeshError as exc:
            problems.append(str(exc))
    holders: dict[int, VenueEntry] = {}
    for entry in entries:
        other = holders.setdefault(entry.default_port, entry)
        if other is not entry:
            why = f"port {entry.default_port} is the venue {other.name}'s too: set another DEFAULT_PORT"
            problems.append(str(PluginRefusal(entry.name, entry.package, why)))
    return entries, problems


@functools.cache
def _plugin_entry(declared: Declared) -> VenueEntry:
    module = _load(declared)
    summary = getattr(module, "SUMMARY", None)
    if not isinstance(summary, str) or not summary:
        summary = declared.summary or f"from the package {declared.package}"
    return VenueEntry(declared.name, declared.module, _port(declared, module), summary, declared.package)


def _load(declared: Declared) -> ModuleType:
    try:
        module = importlib.import_module(declared.module)
    except Exception as exc:  # whatever its import raises: one line naming the package
        reason = f"its module {declared.module} failed to import: {_one_line(exc)}"
        raise _broken(declared.name, declared.package, reason) from exc
    if not callable(getattr(module, "create_venue", None)):
        raise _broken(declared.name, declared.package, f"its module {declared.module} has no create_venue")
    return module


def _port(declared: Declared, module: ModuleType) -> int:
    port = getattr(module, "DEFAULT_PORT", None)
    if port is None:
        return given_ports(_found().plugins, _held_ports())[declared.name]
    highest = 65535 - METRICS_PORT_OFFSET
    if type(port) is not int or not 1024 <= port <= highest:
        raise _broken(declared.name, declared.package, f"DEFAULT_PORT {port!r} is not a port 1024-{highest}")
    if port in PLUGIN_PORTS:
        given = f"{PLUGIN_PORTS.start}-{PLUGIN_PORTS.stop - 1}"
        reason = f"DEFAULT_PORT {port} is in {given}, the ports given to plug-ins that declare none"
        raise _broken(declared.name, declared.package, reason)
    held = _held_ports()
    for wanted in (port, port + METRICS_PORT_OFFSET):
        if wanted in held:
            raise _broken(declared.name, declared.package, f"DEFAULT_PORT {port}: {wanted} is {held[wanted]}")
    return port


@functools.cache
def _held_ports() -> dict[int, str]:
    """The ports the built-in venues and the services listen on (gRPC, HTTP, metrics), by holder."""
    held: dict[int, str] = {}
    for venue in VENUES.values():
        held[venue.default_port] = f"the venue {venue.name}'s port"
        held[venue.default_port + METRICS_PORT_OFFSET] = f"the venue {venue.name}'s metrics port"
    for service in SERVICES.values():
        for port in (service.port, service.grpc_port, service.metrics_port):
            if port is not None:
                held[port] = f"the service {service.name}'s port"
    return held


def _broken(name: str, package: str, reason: str) -> FailedPrecondition:
    return FailedPrecondition(str(PluginRefusal(name, package, reason)))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
