"""The mesh configuration: which venues ingest follows, where they serve, and the bus's sizing.

A TOML file, every key optional but `[[venues]]` entries' name and address:

    outage_minutes = 10          # a consumer group may be down this long without losing entries
    rate_per_s = 2000            # bus entries per second per stream at full rate (sizes MAXLEN)
    [[venues]]
    name = "sim"
    address = "127.0.0.1:5050"
    symbols = ["BTC/USDT"]       # empty or absent: every instrument the venue lists
    channels = ["trades", "book", "tickers", "funding"]  # funding: of the perpetuals only

Redis and PostgreSQL are not here: they come from REDIS_URL and DATABASE_URL (or flags). The
keys are declared on MeshConfig and VenueLink and read by trademesh.core.platform.config.schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.schema import NOT_EMPTY, Above, Items, Parse, Unique, load, read_value
from trademesh.core.platform.config.schema.words import listed_twice
from trademesh.core.platform.errors import InvalidArgument, shown

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

DEFAULT_CHANNELS = (Channel.TRADES, Channel.BOOK, Channel.TICKERS, Channel.FUNDING)


def check_address(address: str, where: str) -> str:
    """host:port with a port in 1..65535 ([v6]:port for IPv6); InvalidArgument naming `where`."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument.field(where, f"{shown(address)} is not HOST:PORT with a port from 1 to 65535")
    return address


def _address(value: Any, path: str) -> str:
    return check_address(read_value(str, value, path), path)


def _venue(value: Any, path: str) -> str:
    # The bus's rule (its streams are named by it): a name it refuses would be followed by
    # nothing, without a word.
    return venue_name(read_value(str, value, path))


@dataclass(frozen=True)
class VenueLink:
    """One venue process the mesh follows."""

    name: Annotated[str, Parse(_venue)]
    address: Annotated[str, Parse(_address)]
    symbols: tuple[Annotated[str, NOT_EMPTY], ...] = ()  # none: every instrument the venue lists
    channels: Annotated[tuple[Channel, ...], Items(1)] = DEFAULT_CHANNELS


@dataclass(frozen=True)
class MeshConfig:
    venues: Annotated[tuple[VenueLink, ...], Unique("name")] = ()
    # A consumer group may be down this long without losing entries; bus entries per second
    # per stream at full rate (both size the streams' MAXLEN).
    outage_minutes: Annotated[float, Above(0)] = 10.0
    rate_per_s: Annotated[float, Above(0)] = 2000.0

    def venue(self, name: str) -> VenueLink | None:
        return next((v for v in self.venues if v.name == name), None)


def parse_venue_link(text: str) -> VenueLink:
    """`name=host:port` (the --venue flag): every symbol, default channels."""
    name, sep, address = text.partition("=")
    if not sep or not name:
        raise InvalidArgument.field("venue", f"{shown(text)} is not NAME=HOST:PORT")
    return VenueLink(venue_name(name), check_address(address, "venue"))


def load_mesh_config(path: Path | None, extra_venues: tuple[VenueLink, ...] = ()) -> MeshConfig:
    """The file's mesh (none: the defaults) with `extra_venues` (the --venue flags) added."""
    config = MeshConfig() if path is None else load(MeshConfig, read_toml(path, "config"), str(path))
    names = [v.name for v in config.venues]
    for link in extra_venues:
        if link.name in names:
            raise InvalidArgument.field("venue", listed_twice(link.name))
        names.append(link.name)
    return MeshConfig(config.venues + extra_venues, config.outage_minutes, config.rate_per_s)


def add_mesh_arguments(parser: Any) -> None:
    """--mesh-config and --venue, for the services that follow venues."""
    parser.add_argument(
        "--mesh-config", type=Path, help="mesh config file (TOML; see trademesh/core/platform/config/mesh.py)"
    )
    parser.add_argument(
        "--venue",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help=(
            "a venue to follow (all symbols, default channels); repeatable; adds to --mesh-config and to the "
            "venues registered with the gateway (TRADEMESH_GATEWAY), over one registered under its name"
        ),
    )


def venue_args(venues: tuple[tuple[str, str], ...]) -> list[str]:
    """The --venue flags naming each (name, address): how `trademesh up` points a service at them."""
    return [flag for name, address in venues for flag in ("--venue", f"{name}={address}")]


def mesh_config_from_args(args: Any) -> MeshConfig:
    """The config a mesh service's command line names: --mesh-config plus each --venue."""
    extra = tuple(parse_venue_link(text) for text in args.venue)
    return load_mesh_config(args.mesh_config, extra)
