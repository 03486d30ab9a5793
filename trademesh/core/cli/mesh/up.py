"""`trademesh up`: the whole local mesh as supervised processes.

Every service of trademesh.core.platform.service.registry.SERVICES, in its start order: the
gateway first (services register with it as they start), the venues next, then each service as
soon as those it depends on are healthy, those ready together at once (ingest, recorder, bars,
...; the advisor once the bridge serves, ...), each with the arguments its ServiceCommand gives
for the mesh; a crashed service is restarted on the ports it had; Ctrl-C stops them all in
reverse order (a group at once: each before those it depends on), then the embedded Redis and
PostgreSQL if it started them. Every so often it prints what the mesh has
done: trades on the bus, recorded, bars closed. The first start makes an API key for Studio
and local agents in <data-dir>/api-key (mode 600); it is never printed.

Its terminal is calm (trademesh.core.cli.mesh.output): one line per service once it serves, with its
address, the Studio URL, progress, and the services' warnings and errors prefixed by service;
every line, the services' INFO records too, goes to <data-dir>/logs/up.log, and `--verbose`
shows them all on the terminal. The services send their records to the log stream (LogHub)
themselves.

Secrets: every service gets the mesh token (TRADEMESH_TOKEN). The trading credential
(TRADEMESH_TRADE_TOKEN) goes only to the services whose ServiceCommand asks for it (`holds`, or
privileged methods that take it): the venues, and the inspector (which sends it). Every
other service has it unset, even when it is in the environment `up` was started from. The same
for the keys that sign the trading streams (TRADEMESH_ADVISOR_SIGNING_KEY,
TRADEMESH_DETECTOR_SIGNING_KEY; made once and kept in <data-dir> like the trading credential):
each to its writer, both to the inspector.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import signal
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trademesh.core.cli.mesh.embedded import Backing, start_backing
from trademesh.core.cli.mesh.external import ExternalVenue, check_external, check_names
from trademesh.core.cli.mesh.output import LOG_FILE, LogFile, MeshOutput
from trademesh.core.cli.mesh.progress import MeshProgress
from trademesh.core.cli.mesh.supervisor import Child, ChildSpec
from trademesh.core.domain.accounts import account_venue
from trademesh.core.platform.config.env import (
    ADVISOR_SIGNING_KEY,
    BUS_DIRECT,
    DATABASE_URL,
    DETECTOR_SIGNING_KEY,
    GATEWAY,
    REDIS_URL,
    SESSION_SECRET,
    SUPERVISOR_API_KEY,
    TELEGRAM_API_KEY,
    TOKEN,
    TRADE_TOKEN,
    VENUE_TRADE_TOKEN,
    account_trade_tokens,
    bus_direct_mode,
    read_secret,
    redact_url,
    venue_variable,
)
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import MeshView, ServiceCommand, load_command
from trademesh.core.platform.service.registry import SERVICES, Kind, ServiceEntry, start_order
from trademesh.venues.sim.config import DEMO_MARKET

__all__ = ["UpOptions", "run_up"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    # Every service on a free port (tests; several meshes on one machine) instead of its own.
    free_ports: bool = False
    # The sim's config: the demo market (trademesh/venues/sim/demo.toml says why) unless one is given.
    sim_config: Path = DEMO_MARKET
    status_every_s: float = 10.0
    # A live venue to paper-trade instead of the sim (`up --paper binance`); None: the sim.
    paper: str | None = None
    # (exchange, account) of each venue account run beside the mesh's venue, as the venue
    # `<exchange>.<account>` (`up --venue-account binance=desk-a`; docs/accounts.md).
    venue_accounts: tuple[tuple[str, str], ...] = ()
    # Venues run elsewhere that the mesh follows as its own (`up --venue-external NAME=HOST:PORT`;
    # trademesh.core.cli.mesh.external): checked, never started.
    external_venues: tuple[ExternalVenue, ...] = ()
    # Every service's INFO lines on the terminal too (`up --verbose`), not only in the log file.
    verbose: bool = False
    # The Screener's screens (`up --screens DIR`); None: the shipped ones.
    screens_dir: Path | None = None
    # Services left out of the mesh (`up --without NAME`): the rest do not need them (check_without).
    without: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        accounts = (account_venue(exchange, account) for exchange, account in self.venue_accounts)
        check_names(self.external_venues, (self.paper or "sim", *accounts))
        check_without(self.without)


def check_without(names: tuple[str, ...]) -> None:
    """InvalidArgument, one line naming the flag, unless every name is a service `up` can leave
    out: not the gateway or the venue (every service registers with the one and follows the
    other), and none that a service still started depends on."""
    for name in names:
        entry = SERVICES.get(name)
        if entry is None:
            known = ", ".join(e.name for e in SERVICES.values() if e.kind is Kind.CORE)
            raise InvalidArgument.field(
                "without", f"{name}: no such service (those up can leave out: {known})"
            )
        if entry.kind is not Kind.CORE:
            raise InvalidArgument.field("without", f"{name}: the mesh needs it (every service uses it)")
    for name in names:
        needing = [e.name for e in SERVICES.values() if name in e.depends_on and e.name not in names]
        if needing:
            raise InvalidArgument.field(
                "without",
                f"{name}: {', '.join(needing)} depend{'s' if len(needing) == 1 else ''} on it"
                " (leave those out too)",
            )


# The API key Studio and local agents log in with; made on first start, kept mode 600.
API_KEY_FILE = "api-key"
SUPERVISOR_KEY_FILE = "supervisor-key"
TELEGRAM_KEY_FILE = "telegram-key"
API_KEY_NAME = "local"
# What Studio does: read everything, place and cancel orders through the inspector, and press its
# emergency button (CLOSE_ALL: the local operator's); operating venues (Drain, ...) and the risk
# policies take a key made with `trademesh keys create NAME --scope admin`.
API_KEY_SCOPES = ("read", "trade", "close_all")
# The Telegram bot's own key: what its commands do (/status reads, /pause and /resume trade,
# /closeall closes all); made only when the bot runs (a bot token in up's environment).
TELEGRAM_KEY_SCOPES = ("read", "trade", "close_all")
# Where `up` keeps the trading streams' writers' keys it made (mode 600), by variable.
SIGNING_KEY_FILES = {ADVISOR_SIGNING_KEY: "advisor-signing-key", DETECTOR_SIGNING_KEY: "detector-signing-key"}
# How an account's own trading credential ends (TRADEMESH_BINANCE__DESK_A_TRADE_TOKEN): the
# inspector holds those too; no other restricted secret (a service's own key) reaches it.
_ACCOUNT_TOKEN = f"_{VENUE_TRADE_TOKEN}"


def _secret(variable: str, data_dir: Path, file_name: str) -> str:
    """The variable's value, else one made for this mesh and kept in <data-dir>/<file> (mode 600)."""
    value = read_secret(variable)
    if value is not None:
        return value
    path = data_dir / file_name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def _port_args(entry: ServiceEntry, options: UpOptions, previous: dict[str, Any]) -> list[str]:
    """The ports it had before a restart (others know them), free ones, or its defaults."""
    names = ["port", "grpc_port" if entry.grpc_port is not None else "metrics_port"]
    if previous:
        values = [str(previous.get(name, 0)) for name in names]
    elif options.free_ports:
        values = ["0", "0"]
    else:
        return []
    return [arg for name, value in zip(names, values, strict=True) for arg in (_flag(name), value)]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Mesh:
    """The children `up` started, in start order, and what later ones learn of earlier ones.

    `env`: what every child gets; `restricted`: secrets only the children that ask for them get
    (ServiceCommand.secrets(): the trading credential goes to the venues and the inspector)."""

    def __init__(
        self,
        options: UpOptions,
        env: dict[str, str],
        restricted: dict[str, str] | None = None,
        output: MeshOutput | None = None,
    ) -> None:
        self.options = options
        self.output = output or MeshOutput()
        self.env = env
        self.restricted = restricted or {}
        if options.paper is None:
            self.view = MeshView(sim_config=options.sim_config, screens_dir=options.screens_dir)
        else:
            self.view = MeshView(venue=options.paper, paper=True, screens_dir=options.screens_dir)
        self.children: list[Child] = []
        self.started: dict[str, list[Child]] = {}  # by service (a venue's accounts with it)
        self.waves: list[list[Child]] = []  # the children by group of waves(), for _stop_waves

    def spec(self, entry: ServiceEntry, command: ServiceCommand[Any]) -> ChildSpec:
        view, options = self.view, self.options

        def args(previous: dict[str, Any]) -> list[str]:
            return [entry.name, *command.mesh_args(view), *_port_args(entry, options, previous)]

        name = view.venue if entry.kind is Kind.VENUE else entry.name
        env = {**self.env, **self.secrets_of(command)}
        if entry.restart_delay_max_s is None:
            return ChildSpec(name, args, env)
        return ChildSpec(name, args, env, restart_delay_max_s=entry.restart_delay_max_s)

    def secrets_of(self, command: ServiceCommand[Any]) -> dict[str, str]:
        """The restricted secrets it holds; the others set empty (read as unset), so one exported
        in the shell that started `up` reaches no other service."""
        held = command.secrets()
        if TRADE_TOKEN in command.holds:  # the sender (the inspector) holds every account's own too
            held |= frozenset(n for n in self.restricted if n != TRADE_TOKEN and n.endswith(_ACCOUNT_TOKEN))
        return {name: value if name in held else "" for name, value in self.restricted.items()}

    def account_spec(self, exchange: str, account: str, command: ServiceCommand[Any]) -> ChildSpec:
        """A venue account's process: `venue EXCHANGE --account ACCOUNT` (a sim account with the
        mesh's sim config), on free ports at its first start (the exchange's default port is the
        mesh venue's) and on the ones it had after a restart. Its own trading credential, when
        exported in up's shell, goes to it; its exchange credentials it reads from the shell."""
        venue = account_venue(exchange, account)
        config = ["--config", str(self.options.sim_config)] if exchange == "sim" else []

        def args(previous: dict[str, Any]) -> list[str]:
            ports = [str(previous.get("port", 0)), str(previous.get("metrics_port", 0))]
            return [
                "venue",
                exchange,
                "--account",
                account,
                *config,
                "--port",
                ports[0],
                "--metrics-port",
                ports[1],
            ]

        secrets = self.secrets_of(command)
        own = venue_variable(venue, VENUE_TRADE_TOKEN)
        if own in self.restricted:
            secrets[own] = self.restricted[own]
        env = {**self.env, **secrets}
        entry = SERVICES["venue"]
        if entry.restart_delay_max_s is None:
            return ChildSpec(venue, args, env)
        return ChildSpec(venue, args, env, restart_delay_max_s=entry.restart_delay_max_s)

    async def start(self, entry: ServiceEntry, command: ServiceCommand[Any]) -> None:
        await self._run(entry, Child(self.spec(entry, command), _WIDTH, self.output))
        if entry.kind is Kind.VENUE:  # the accounts next, before the services that follow venues
            for exchange, account in self.options.venue_accounts:
                spec = self.account_spec(exchange, account, command)
                await self._run(entry, Child(spec, _WIDTH, self.output))
            for venue in self.options.external_venues:
                await self._external(venue)

    async def _external(self, venue: ExternalVenue) -> None:
        """A venue run elsewhere, once it answers: one of the venues the next services follow."""
        self.output.say(f"{venue.name}: waiting for it on {venue.address} (external: not started by up)")
        await check_external(venue, self.env[TOKEN])
        self.view = dataclasses.replace(self.view, venues=(*self.view.venues, (venue.name, venue.address)))
        self.output.say(f"{venue.name} answers on {venue.address} (external: followed, not supervised)")

    async def _run(self, entry: ServiceEntry, child: Child) -> None:
        self.children.append(child)
        self.started.setdefault(entry.name, []).append(child)
        await child.start()
        self._learn(entry, child)

    def _learn(self, entry: ServiceEntry, child: Child) -> None:
        if entry.kind is Kind.GATEWAY:
            self.env = {**self.env, GATEWAY: child.grpc_address}
            self.view = dataclasses.replace(self.view, gateway_url=f"http://{child.address}")
            said = f"gateway serving on {child.address} (pid {child.pid}), registry on {child.grpc_address}"
            self.output.say(said)
            return
        if entry.kind is Kind.VENUE:
            venues = (*self.view.venues, (child.spec.name, child.address))
            self.view = dataclasses.replace(self.view, venues=venues)
        doing = "standing by" if child.standing_by else "serving"  # another process leads it
        self.output.say(f"{child.spec.name} {doing} on {child.address} (pid {child.pid})")


def planned(without: tuple[str, ...] = ()) -> tuple[list[ServiceEntry], list[tuple[str, str]]]:
    """The services `up` starts, in start order, and those it leaves out with why: those named by
    `--without`, a service run by hand until its own change puts it in the mesh, one that runs
    only when configured (the Telegram bot without a bot token in up's environment)."""
    started, left = [], []
    for entry in start_order():
        if entry.name in without:
            why: str | None = "left out (--without)"
        elif not entry.deployed:
            why = "run by hand (not deployed yet)"
        else:
            why = load_command(entry).left_out()
        if why is None:
            started.append(entry)
        else:
            left.append((entry.name, why))
    return started, left


def _after(entry: ServiceEntry, entries: list[ServiceEntry]) -> list[str]:
    """The services of `entries` that `entry` starts after: those it depends on, the gateway (the
    others register with it), and for a service that is not a venue every venue (the mesh's
    sources: the sim's start, its history played, is the longest, and nothing else competes
    with it for the CPU)."""
    ahead = {Kind.VENUE: (Kind.GATEWAY,), Kind.CORE: (Kind.GATEWAY, Kind.VENUE)}.get(entry.kind, ())
    named = {e.name for e in entries}
    return [d for d in entry.depends_on if d in named] + [e.name for e in entries if e.kind in ahead]


def waves(entries: list[ServiceEntry]) -> list[list[ServiceEntry]]:
    """`entries` (in start order) in groups: each service in the first group after every one it
    starts after (_after): the gateway, the venues, then the others by dependency; in start order
    within a group. `up` stops them a group at a time, the last first."""
    placed: dict[str, int] = {}
    found: list[list[ServiceEntry]] = []
    for entry in entries:
        index = max((placed[name] for name in _after(entry, entries) if name in placed), default=-1) + 1
        if index == len(found):
            found.append([])
        found[index].append(entry)
        placed[entry.name] = index
    return found


async def _start_all(mesh: _Mesh, entries: list[ServiceEntry], stop: asyncio.Event) -> None:
    """Each service as soon as those it starts after (_after) serve, those ready together at
    once; the children kept by group in mesh.waves (for _stop_waves). A Ctrl-C meanwhile starts
    no further one (those starting end their starts); one start failing ends the others."""
    served = {entry.name: asyncio.Event() for entry in entries}
    failed = False

    async def start(entry: ServiceEntry) -> None:
        nonlocal failed
        for name in _after(entry, entries):
            await served[name].wait()
        try:
            if not (stop.is_set() or failed):
                await mesh.start(entry, load_command(entry))
        except BaseException:
            failed = True
            raise
        finally:
            served[entry.name].set()  # served, or never to: those after it look at `failed`

    tasks = [asyncio.create_task(start(entry)) for entry in entries]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        mesh.waves = [[c for e in group for c in mesh.started.get(e.name, [])] for group in waves(entries)]


async def _stop_waves(started: list[list[Child]], output: MeshOutput | None = None) -> None:
    """The groups in reverse order, the children of each at once: every service stops before
    those it depends on."""
    output = output or MeshOutput()

    async def stop(child: Child) -> None:
        code = await child.stop()
        output.say(f"{child.spec.name} stopped ({code})")

    for wave in reversed(started):
        await asyncio.gather(*(stop(child) for child in reversed(wave)))


async def _stop_all(children: list[Child], output: MeshOutput | None = None) -> None:
    """Each in turn, the last started first."""
    await _stop_waves([[child] for child in children], output)


async def _login_key(options: UpOptions, backing: Backing) -> Path:
    from trademesh.core.platform.access.contracts import Scope
    from trademesh.gateway.auth.keyfile import ensure_key_file

    path = options.data_dir / API_KEY_FILE
    await ensure_key_file(backing.database_url, API_KEY_NAME, path, [Scope(s) for s in API_KEY_SCOPES])
    return path


async def _own_key(backing: Backing, path: Path, name: str, scopes: tuple[str, ...]) -> str:
    """The key a service acts with through the gateway, named `name`, kept in `path` (mode 600)."""
    from trademesh.core.platform.access.contracts import Scope
    from trademesh.gateway.auth.keyfile import ensure_key_file, read_key_file

    await ensure_key_file(backing.database_url, name, path, [Scope(s) for s in scopes])
    key = read_key_file(path)
    assert key is not None
    return key


async def _service_keys(options: UpOptions, backing: Backing, names: set[str]) -> dict[str, str]:
    """The keys of the services that act through the gateway, of those `up` starts: the
    Supervisor's (read, trade: it pauses and resumes strategies; no admin, so its capital proposals
    are the operator's to carry out) and the Telegram bot's (TELEGRAM_KEY_SCOPES)."""
    keys = {}
    if "supervisor" in names:
        path = options.data_dir / SUPERVISOR_KEY_FILE
        keys[SUPERVISOR_API_KEY] = await _own_key(backing, path, "supervisor", ("read", "trade"))
    if "telegram" in names:
        path = options.data_dir / TELEGRAM_KEY_FILE
        keys[TELEGRAM_API_KEY] = await _own_key(backing, path, "telegram", TELEGRAM_KEY_SCOPES)
    return keys


async def _mesh(options: UpOptions, backing: Backing, output: MeshOutput) -> None:
    env = {
        REDIS_URL: backing.redis_url,
        DATABASE_URL: backing.database_url,
        # The venues write their own streams to the bus (docs/bus.md, "The direct path": less CPU
        # a frame than venue + ingest); TRADEMESH_BUS_DIRECT=0 in up's shell leaves them to ingest.
        BUS_DIRECT: "1" if bus_direct_mode(default=True) else "0",
        TOKEN: _secret(TOKEN, options.data_dir, "token"),
        SESSION_SECRET: _secret(SESSION_SECRET, options.data_dir, "session-secret"),
    }
    # The trading credential: the venues' (they check it) and the inspector's (it sends it: its
    # ServiceCommand says `holds=(TRADE_TOKEN,)`); no other service gets it.
    restricted = {TRADE_TOKEN: _secret(TRADE_TOKEN, options.data_dir, "trade-token")}
    # The trading streams' writers' keys, each to its writer (`holds`) and to the inspector,
    # which acts only on what they signed (docs/bus.md, "Who may write the trading streams").
    restricted.update(
        {name: _secret(name, options.data_dir, path) for name, path in SIGNING_KEY_FILES.items()}
    )
    # An account's own trading credential exported in up's shell goes where the mesh's does
    # (docs/accounts.md).
    restricted.update(account_trade_tokens())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    mesh = _Mesh(options, env, restricted, output)
    children = mesh.children
    tasks: list[asyncio.Task[None]] = []
    try:
        key_file = await _login_key(options, backing)
        entries, left = planned(options.without)
        for name, why in left:
            output.say(f"{name} not started: {why}")
        mesh.restricted.update(await _service_keys(options, backing, {e.name for e in entries}))
        await _start_all(mesh, entries, stop)
        if not stop.is_set():
            output.say("all services healthy; Ctrl-C stops the mesh")
            output.say(f"Studio: http://{children[0].address}/ (log in with the key in {key_file})")
            tasks = [asyncio.create_task(child.supervise(stop)) for child in children]
            progress = MeshProgress(backing.redis_url, backing.database_url)
            tasks.append(asyncio.create_task(progress.run(stop, options.status_every_s, output.say)))
            await stop.wait()
        output.say("stopping")
    finally:
        stop.set()
        await _stop_waves(mesh.waves, output)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_up(options: UpOptions) -> None:
    import uvloop

    output = _output(options)
    to_file = output.take_logging()
    try:
        with ExitStack() as stack:
            backing = start_backing(options.data_dir, stack)
            if backing.embedded:
                output.say(f"embedded {' and '.join(backing.embedded)} in {options.data_dir}")
            redis, database = redact_url(backing.redis_url), redact_url(backing.database_url)
            output.say(f"bus {redis}, database {database}")
            uvloop.run(_mesh(options, backing, output))
        output.say("stopped")
    finally:
        logging.getLogger().removeHandler(to_file)
        if output.log is not None:
            output.log.close()


def _output(options: UpOptions) -> MeshOutput:
    """The terminal (calm unless --verbose) and the log file, named in up's first line."""
    path = options.data_dir / LOG_FILE
    output = MeshOutput(log=LogFile(path), verbose=options.verbose)
    where = "here and in" if options.verbose else "in"
    more = "" if options.verbose else " (--verbose: here too)"
    output.say(f"starting the mesh; every service's full log {where} {path}{more}")
    return output


_WIDTH = max(len(name) for name in SERVICES)
