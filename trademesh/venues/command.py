"""`trademesh venue NAME`: one venue service (MarketData, TradeFlow, Admin) on its own port.

Imports stay light (argparse and the venue table): the venue's own modules, and the replay
stand-in, load only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.core.domain.accounts import account_name, account_venue
from trademesh.core.platform.config.env import (
    TRADE_TOKEN,
    bus_direct_mode,
    paper_mode,
    redis_url,
    trade_token_variable,
)
from trademesh.core.platform.config.flags import add_flags, flag_values, setting
from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.core.platform.rpc.auth import Privileged
from trademesh.core.platform.service.command import (
    MeshView,
    ServiceCommand,
    add_redis_argument,
    positive_float,
    positive_int,
)
from trademesh.venues.registry import VENUES, known_venue, venue_entry, venue_names

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp
    from trademesh.venues.replay.server import ReplayOptions
    from trademesh.venues.runtime.venue import Venue

__all__ = ["COMMAND", "TRADING", "VenueConfig", "symbol_list"]

# The RPCs that place or cancel orders, set leverage (the next order's margin), and the dead-man
# switch (a caller that could arm it could have the inspector's orders cancelled): they take only
# the trading credential, which the inspector alone holds (docs/services.md, "Credentials").
TRADING = Privileged(
    methods=frozenset(
        {
            "/trademesh.tradeflow.v1.TradeFlow/PlaceOrder",
            "/trademesh.tradeflow.v1.TradeFlow/CancelOrder",
            "/trademesh.tradeflow.v1.TradeFlow/CancelAllOrders",
            "/trademesh.tradeflow.v1.TradeFlow/AmendOrder",
            "/trademesh.tradeflow.v1.TradeFlow/SetLeverage",
            "/trademesh.admin.v1.Admin/Heartbeat",
        }
    ),
    credential="trading credential",
    variable=TRADE_TOKEN,
    why="only the inspector places and cancels orders at a venue",
    # Drain cancels every open order when asked to: then it is an order RPC too.
    when_set=frozenset({("/trademesh.admin.v1.Admin/Drain", "cancel_open_orders")}),
)


@dataclass(frozen=True)
class VenueConfig:
    name: str
    # The venue's own config file (TOML), or None for its defaults.
    config_path: Path | None = None
    # Recorded sessions to serve instead of the live venue (the replay stand-in).
    replay: ReplayOptions | None = None
    # Seconds of market data kept for subscribers that resume a lost stream.
    resume_window_s: float = setting(
        120.0,
        type=float,
        help="seconds of market data kept for subscribers that resume a lost stream "
        "(default {default}; 0: none)",
    )
    # Executions kept for subscribers that resume (the latest this many).
    execution_history: int = setting(
        50_000,
        type=positive_int,
        metavar="N",
        help="executions kept for subscribers that resume a lost stream",
    )
    # Paper trading: the venue's market data, orders matched by the sim's engine (trademesh/venues/paper).
    paper: bool = False
    # The paper account and matching terms (TOML; trademesh/venues/paper/config.py), with `paper` only.
    paper_config: Path | None = None
    # One account at the exchange: the instance is the venue `<name>.<account>` with the
    # account's own credentials (docs/accounts.md); None: the exchange's one account.
    account: str | None = None
    # The direct path: the venue writes its own market data and executions to the bus at this
    # Redis URL (trademesh.venues.runtime.direct; docs/bus.md, "The direct path"); None: ingest carries them.
    bus_direct: str | None = None
    # With bus_direct: bus entries held while Redis is slow or away (past it: resumed from the
    # venue's history, or gap-marked).
    bus_max_queued: int = setting(
        20_000,
        type=positive_int,
        metavar="N",
        help="with --bus-direct: bus entries held while Redis is slow or away",
    )
    # With bus_direct: the account's funding payments read into funding.{<venue>} this often (0: not).
    bus_funding_every_s: float = setting(
        60.0,
        type=float,
        metavar="S",
        help="with --bus-direct: read the account's funding payments into funding.{<venue>} this often "
        "(default {default}; 0: not read), as ingest does",
    )
    # With bus_direct: the instrument list diffed into md.{<venue>}.instruments this often (0: not).
    bus_instruments_every_s: float = setting(
        60.0,
        type=float,
        metavar="S",
        help="with --bus-direct: read the venue's instrument list this often and publish its changes on "
        "md.{<venue>}.instruments (default {default}; 0: not read), as ingest does",
    )
    # `--symbols`: the symbols the venue serves, instead of its config's (else its defaults; the
    # sim: a subset of its config's markets); None: those.
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # A built-in name needs no look at the installed packages' entry points (a scan of every
        # distribution's metadata: the largest part of a sim's set-up before it serves).
        if self.name not in VENUES and self.name not in (names := venue_names()):
            raise InvalidArgument.field("name", f"unknown venue {self.name!r}; known: {', '.join(names)}")
        if not self.resume_window_s >= 0:
            raise InvalidArgument.field("resume-window-s", f"{self.resume_window_s} is negative")
        if self.paper and self.name in _OWN_MARKET:
            raise InvalidArgument.field(
                "paper", f"venue {self.name!r} makes its own market: --paper is for live venues"
            )
        if self.paper_config is not None and not self.paper:
            raise InvalidArgument.field("paper-config", f"{self.paper_config} given without --paper")
        if self.account is not None:
            account_name(self.account)
            if self.paper:  # a paper venue never reaches the exchange's accounts (docs/accounts.md)
                raise InvalidArgument.field(
                    "account", f"{self.account} is an account at the exchange: a --paper venue trades none"
                )
        if not 0 <= self.bus_funding_every_s <= 86_400:
            raise InvalidArgument.field(
                "bus-funding-every-s", f"must be between 0 and 86400, got {self.bus_funding_every_s}"
            )
        if not 0 <= self.bus_instruments_every_s <= 86_400:
            raise InvalidArgument.field(
                "bus-instruments-every-s", f"must be between 0 and 86400, got {self.bus_instruments_every_s}"
            )
        if self.symbols is not None and not self.symbols:
            raise InvalidArgument.field("symbols", "name at least one symbol (BTC/USDT,ETH/USDT)")
        if self.execution_history < 1:
            raise InvalidArgument.field(
                "execution-history", f"must be at least 1, got {self.execution_history}"
            )


# Venues that make their own market: nothing to paper-trade against.
_OWN_MARKET = frozenset({"sim"})
# The settings of the direct path, shown after --redis-url.
_BUS_SETTINGS = ("bus_max_queued", "bus_funding_every_s", "bus_instruments_every_s")


def _venue_name(value: str) -> str:
    try:
        return known_venue(value)  # a built-in or a package's (docs/venues.md)
    except NotFound as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _account(text: str) -> str:
    try:
        return account_name(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.violations[0].description) from None


def symbol_list(text: str) -> tuple[str, ...]:
    """`--symbols A,B,...`: the symbols, each once in the order given; one blank, or one with a
    space in it, is refused (whether the venue has a market of each is the venue's to say, at start)."""
    symbols = [part.strip() for part in text.split(",")]
    for symbol in symbols:
        if not symbol:
            raise argparse.ArgumentTypeError(f"{text!r} names an empty symbol: A,B,... (BTC/USDT,ETH/USDT)")
        if any(c.isspace() for c in symbol):
            raise argparse.ArgumentTypeError(f"{symbol!r} is not a symbol: A,B,... (BTC/USDT,ETH/USDT)")
    return tuple(dict.fromkeys(symbols))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", type=_venue_name, help="venue name (see `trademesh venues`)")
    parser.add_argument(
        "--account",
        type=_account,
        metavar="NAME",
        help="one account at the exchange: registers as the venue NAME.ACCOUNT (binance.desk-a) with "
        "its own credentials, TRADEMESH_<VENUE>__<ACCOUNT>_API_KEY ... (see docs/accounts.md)",
    )
    parser.add_argument("--config", type=Path, help="venue config file (TOML)")
    parser.add_argument(
        "--symbols",
        type=symbol_list,
        metavar="A,B,...",
        help="the symbols the venue serves (canonical: BTC/USDT,ETH/USDT), instead of its config's, "
        "else its defaults (a live venue's: its spec's; on --replay: the session's markets); one the "
        "exchange does not list is refused at start. The sim: some of its config's markets",
    )
    add_flags(parser, VenueConfig, skip=_BUS_SETTINGS)
    parser.add_argument(
        "--paper",
        action="store_true",
        help="paper trading: the venue's market data, orders matched against its book by the sim's "
        "engine, never sent to the exchange (no credentials needed; see docs/paper.md)",
    )
    parser.add_argument(
        "--paper-config",
        type=Path,
        metavar="FILE",
        help="with --paper: the paper account and matching terms (TOML: balances, fees, latency_ms)",
    )
    parser.add_argument(
        "--bus-direct",
        action="store_true",
        help="write this venue's market data and executions to the bus itself (--redis-url, else "
        "$REDIS_URL), as ingest would, which then leaves the venue to it (also: $TRADEMESH_BUS_DIRECT=1; "
        "see docs/bus.md)",
    )
    add_redis_argument(parser)
    add_flags(parser, VenueConfig, only=_BUS_SETTINGS)
    parser.add_argument(
        "--replay",
        type=Path,
        nargs="+",
        metavar="CAPTURE",
        help="serve recorded exchange sessions instead of the live venue (capture files; see docs/venues.md)",
    )
    parser.add_argument(
        "--replay-paced", action="store_true", help="replay at the recorded pace (default: full speed)"
    )
    parser.add_argument(
        "--replay-speed",
        type=positive_float,
        metavar="X",
        help="replay at X times the recorded pace (2: twice as fast; implies --replay-paced)",
    )
    parser.add_argument(
        "--replay-fault",
        action="append",
        default=[],
        metavar="KIND@N",
        help="fault at market frame N: disconnect, gap, repeat, reorder, malformed; "
        "ratelimit@N, slow@N: next N REST calls; history-ratelimit@N (429), ban@N (418): next N "
        "history calls (trades, candles, tickers)",
    )


def _config(args: argparse.Namespace) -> VenueConfig:
    # $TRADEMESH_PAPER=1 turns a live venue to paper (compose); the sim makes its own market.
    paper = args.paper or (args.name not in _OWN_MARKET and paper_mode())
    replay = None
    if args.replay:
        from trademesh.venues.replay.server import ReplayOptions, parse_fault

        faults = tuple(parse_fault(text) for text in args.replay_fault)
        paced = args.replay_paced or args.replay_speed is not None
        speed = 1.0 if args.replay_speed is None else args.replay_speed
        replay = ReplayOptions(tuple(args.replay), paced=paced, speed=speed, faults=faults)
    direct = args.bus_direct or bus_direct_mode()
    return VenueConfig(
        args.name,
        args.config,
        replay,
        paper=paper,
        paper_config=args.paper_config,
        account=args.account,
        bus_direct=redis_url(args.redis_url) if direct else None,
        symbols=args.symbols,
        **flag_values(args, VenueConfig),
    )


def _create(config: VenueConfig) -> ServiceApp:
    from trademesh.venues.registry import create_venue
    from trademesh.venues.runtime.app import VenueApp
    from trademesh.venues.runtime.runtime import RuntimeOptions

    if config.paper:
        from trademesh.venues.paper import create_paper_venue

        venue: Venue = create_paper_venue(
            config.name, config.config_path, config.replay, config.paper_config, config.symbols
        )
    else:
        venue = create_venue(config.name, config.config_path, config.replay, config.account, config.symbols)
    options = RuntimeOptions(
        resume_window_s=config.resume_window_s, execution_history=config.execution_history
    )
    direct = None
    if config.bus_direct is not None:
        from trademesh.venues.runtime.direct import DirectOptions

        direct = DirectOptions(
            config.bus_direct,
            max_queued=config.bus_max_queued,
            funding_every_s=config.bus_funding_every_s,
            instruments_every_s=config.bus_instruments_every_s,
        )
    return VenueApp(venue, options, direct)


def _mesh_args(mesh: MeshView) -> list[str]:
    if mesh.paper:
        return [mesh.venue, "--paper"]
    config = ["--config", str(mesh.sim_config)] if mesh.sim_config is not None else []
    return [mesh.venue, *config]


def _instance_port(args: argparse.Namespace) -> int:
    return venue_entry(args.name).default_port


def _privileged(args: argparse.Namespace) -> Privileged:
    """An account's own trading credential when it is set (docs/accounts.md), else TRADING's."""
    variable = trade_token_variable(account_venue(args.name, args.account))
    return TRADING if variable == TRADING.variable else dataclasses.replace(TRADING, variable=variable)


COMMAND: ServiceCommand[VenueConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    settings=(VenueConfig,),
    mesh_args=_mesh_args,
    instance_port=_instance_port,
    privileged=TRADING,
    privileged_of=_privileged,
)
