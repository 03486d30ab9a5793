"""The mesh configuration: which venues ingest follows, where they serve, and the bus's sizing.

A TOML file, every key optional but `[[venues]]` entries' name and address:

    outage_minutes = 10          # a consumer group may be down this long without losing entries
    rate_per_s = 2000            # bus entries per second per stream at full rate (sizes MAXLEN)
    [[venues]]
    name = "sim"
    address = "127.0.0.1:5050"
    symbols = ["BTC/USDT"]       # empty or absent: every instrument the venue lists
    channels = ["trades", "book", "tickers"]

Redis and PostgreSQL are not here: they come from REDIS_URL and DATABASE_URL (or flags).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.foundations.config_file import read_toml
from core.foundations.errors import InvalidArgument, shown
from core.foundations.model import Channel

__all__ = [
    "DEFAULT_CHANNELS",
    "MeshConfig",
    "VenueLink",
    "add_mesh_arguments",
    "check_address",
    "load_mesh_config",
    "mesh_config_from_args",
    "parse_venue_link",
    "venue_args",
]

DEFAULT_CHANNELS = (Channel.TRADES, Channel.BOOK, Channel.TICKERS)


@dataclass(frozen=True)
class VenueLink:
    """One venue process the mesh follows."""

    name: str
    address: str
    symbols: tuple[str, ...] = ()
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS


@dataclass(frozen=True)
class MeshConfig:
    venues: tuple[VenueLink, ...] = ()
    outage_minutes: float = 10.0
    rate_per_s: float = 2000.0

    def venue(self, name: str) -> VenueLink | None:
        return next((v for v in self.venues if v.name == name), None)


def check_address(address: str, where: str) -> str:
    """host:port with a port in 1..65535 ([v6]:port for IPv6); InvalidArgument naming `where`."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument.field(where, f"{shown(address)} is not HOST:PORT with a port from 1 to 65535")
    return address


def parse_venue_link(text: str) -> VenueLink:
    """`name=host:port` (the --venue flag): every symbol, default channels."""
    name, sep, address = text.partition("=")
    if not sep or not name:
        raise InvalidArgument.field("venue", f"{shown(text)} is not NAME=HOST:PORT")
    return VenueLink(name, check_address(address, "venue"))


def _channels(raw: Any, where: str) -> tuple[Channel, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument.field(where, "must be a non-empty list of channel names")
    known = {c.value: c for c in Channel}
    for value in raw:
        if value not in known:
            raise InvalidArgument.field(where, f"unknown channel {value!r}; known: {', '.join(known)}")
    return tuple(known[value] for value in raw)


def _venue(raw: Any, index: int) -> VenueLink:
    where = f"venues[{index}]"
    if not isinstance(raw, dict):
        raise InvalidArgument.field(where, "must be a table")
    unknown = sorted(set(raw) - {"name", "address", "symbols", "channels"})
    if unknown:
        raise InvalidArgument.field(
            f"{where}.{unknown[0]}", "unknown key; known: name, address, symbols, channels"
        )
    for key in ("name", "address"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InvalidArgument.field(f"{where}.{key}", "required, a non-empty string")
    symbols = raw.get("symbols", [])
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        raise InvalidArgument.field(f"{where}.symbols", "must be a list of symbols")
    channels = _channels(raw["channels"], f"{where}.channels") if "channels" in raw else DEFAULT_CHANNELS
    return VenueLink(raw["name"], check_address(raw["address"], f"{where}.address"), tuple(symbols), channels)


def _number(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidArgument.field(key, f"{value!r} is not a positive number")
    return float(value)


def load_mesh_config(path: Path | None, extra_venues: tuple[VenueLink, ...] = ()) -> MeshConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(path, "config")
    venues_raw = raw.pop("venues", [])
    if not isinstance(venues_raw, list):
        raise InvalidArgument.field("venues", "must be an array of tables ([[venues]])")
    venues = tuple(_venue(item, i) for i, item in enumerate(venues_raw)) + extra_venues
    outage = _number(raw, "outage_minutes", MeshConfig.outage_minutes)
    rate = _number(raw, "rate_per_s", MeshConfig.rate_per_s)
    if raw:
        unknown = sorted(raw)[0]
        raise InvalidArgument.field(unknown, "unknown key; known: venues, outage_minutes, rate_per_s")
    names = [v.name for v in venues]
    if len(set(names)) != len(names):
        raise InvalidArgument.field("venues", f"a venue is listed twice: {names}")
    return MeshConfig(venues, outage, rate)


def add_mesh_arguments(parser: Any) -> None:
    """--mesh-config and --venue, for the services that follow venues."""
    parser.add_argument(
        "--mesh-config", type=Path, help="mesh config file (TOML; see core/foundations/mesh_config.py)"
    )
    parser.add_argument(
        "--venue",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a venue to follow (all symbols, default channels); repeatable; adds to --mesh-config",
    )


def venue_args(venues: tuple[tuple[str, str], ...]) -> list[str]:
    """The --venue flags naming each (name, address): how `trademesh up` points a service at them."""
    return [flag for name, address in venues for flag in ("--venue", f"{name}={address}")]


def mesh_config_from_args(args: Any) -> MeshConfig:
    """The config a mesh service's command line names: --mesh-config plus each --venue."""
    extra = tuple(parse_venue_link(text) for text in args.venue)
    return load_mesh_config(args.mesh_config, extra)
