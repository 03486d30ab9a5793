"""The venue a download reads: a running one at HOST:PORT, or one started for the download as a
child process (`python -m trademesh.core.cli venue NAME --port 0 --symbols ...`: public history needs no
keys; it serves the symbols asked for) and stopped after. Its calls wait out RESOURCE_EXHAUSTED
and UNAVAILABLE (the venue's RetryInfo delay when its status carries one, else a backoff), up to
a deadline; each wait is counted.

Only processes and the MarketData contract: nothing of trademesh/venues/ is imported (.importlinter).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.config.env import BUS_DIRECT, GATEWAY, TOKEN
from trademesh.core.platform.errors import FailedPrecondition, NotFound, TrademeshError, Unavailable
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.status import call_failure, from_call_error
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["CALL_TIMEOUT_S", "VenueHistory", "Waits", "connected_venue", "retry_delay", "started_venue"]

T = TypeVar("T")

# A GetCandles call may page an exchange behind it at its rate limits: give it time.
CALL_TIMEOUT_S = 120.0
_WAITED = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_VENUE_START_S = 90.0
_FIRST_CALL_S = 30.0
_LOG_TAIL_LINES = 15
# The download's own venue joins no mesh: it neither registers with a gateway nor writes the bus.
_CHILD_ENV = {GATEWAY: "", BUS_DIRECT: "0"}
# Venue arguments that name the symbols it serves: given one, the download adds no --symbols.
_OWN_SYMBOLS = ("--symbols", "--config")
_SYMBOLS_REFUSED = "trademesh: symbols: "


@dataclass
class Waits:
    """The waits of a download: rate limits (RESOURCE_EXHAUSTED) and a venue away (UNAVAILABLE)."""

    rate_limited: int = 0
    unavailable: int = 0
    seconds: float = 0.0
    last: str = ""
    on_wait: Callable[[str, float], None] | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return self.rate_limited + self.unavailable


class VenueHistory:
    """MarketData's ListInstruments, GetCandles and GetTrades of the venue at `address`, with
    the mesh token (TRADEMESH_TOKEN) when set, like every client of a venue."""

    def __init__(self, address: str, patience_s: float, who: str | None = None, hint: str = "") -> None:
        self.address = address
        self.who = who or f"the venue at {address}"
        self.hint = hint  # said after a symbol it does not list (why it does not)
        self.waits = Waits()
        self._patience_s = patience_s
        self._upstreams = Upstreams()
        self._stub = md_grpc.MarketDataStub(self._upstreams.channel(address))
        self._metadata = auth_metadata()

    async def close(self) -> None:
        await self._upstreams.close()

    async def instruments(self, symbols: Sequence[str]) -> dict[str, str]:
        """symbol -> the venue's name in its rows, of `symbols`; NotFound naming those it does not list."""
        # A venue that does not answer at first (a wrong address) is said within half a minute.
        answer = await self._call(lambda: self._stub.ListInstruments(
            md.ListInstrumentsRequest(), timeout=_FIRST_CALL_S, metadata=self._metadata
        ), min(self._patience_s, _FIRST_CALL_S))  # fmt: skip
        listed = {i.symbol: i.venue for i in answer.instruments}
        missing = [s for s in symbols if s not in listed]
        if missing:
            raise NotFound(
                f"{self.who} does not list {', '.join(missing)} (it lists {_some(sorted(listed))}){self.hint}"
            )
        if any(not listed[s] for s in symbols):
            raise FailedPrecondition(f"{self.who} names no venue in its instruments (Instrument.venue)")
        return {s: listed[s] for s in symbols}

    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> Sequence[md.Candle]:
        request = md.GetCandlesRequest(
            symbol=symbol, timeframe=TIMEFRAME_TO_PB[timeframe], start_ns=start_ns, end_ns=end_ns, limit=limit
        )
        answer = await self._call(
            lambda: self._stub.GetCandles(request, timeout=CALL_TIMEOUT_S, metadata=self._metadata)
        )
        return list(answer.candles)

    async def trades(
        self, symbol: str, start_ns: int, end_ns: int, limit: int, token: str
    ) -> tuple[Sequence[md.HistoricalTrade], str]:
        request = md.GetTradesRequest(
            symbol=symbol, start_ns=start_ns, end_ns=end_ns, limit=limit, page_token=token
        )
        answer = await self._call(
            lambda: self._stub.GetTrades(request, timeout=CALL_TIMEOUT_S, metadata=self._metadata)
        )
        return list(answer.trades), answer.next_page_token

    async def _call(self, call: Callable[[], Awaitable[T]], patience_s: float | None = None) -> T:
        """The call's answer; its RESOURCE_EXHAUSTED / UNAVAILABLE waited out up to the patience,
        anything else (and a wait past it) the project's error naming the venue."""
        backoff = Backoff(0.5, 10.0)
        patience_s = self._patience_s if patience_s is None else patience_s
        deadline = time.monotonic() + patience_s
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    raise FailedPrecondition(
                        f"{self.who} does not serve this history: {call_failure(exc)}"
                    ) from None
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    raise FailedPrecondition(
                        f"{self.who} refused the mesh token: set {TOKEN} to the venue's ({call_failure(exc)})"
                    ) from None
                if code not in _WAITED:
                    raise from_call_error(exc, self.who, CALL_TIMEOUT_S) from None
                delay = retry_delay(exc)
                delay = backoff.next() if delay is None else delay
                if time.monotonic() + delay > deadline:
                    raise Unavailable(
                        f"{self.who} still answers {call_failure(exc)} after {patience_s:g} s of waiting"
                    ) from None
                self._count(exc, delay)
                await asyncio.sleep(delay)

    def _count(self, exc: grpc.aio.AioRpcError, delay: float) -> None:
        waits = self.waits
        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            waits.rate_limited += 1
        else:
            waits.unavailable += 1
        waits.seconds += delay
        waits.last = f"{self.who}: {call_failure(exc)}"
        if waits.on_wait is not None:
            waits.on_wait(waits.last, delay)


def retry_delay(exc: grpc.aio.AioRpcError) -> float | None:
    """The seconds the status's google.rpc.RetryInfo asks to wait, when it carries one."""
    try:
        status = rpc_status.from_call(exc)
    except ValueError:
        return None
    for detail in () if status is None else status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            seconds: float = info.retry_delay.ToTimedelta().total_seconds()
            return seconds
    return None


def _some(names: list[str], shown: int = 8) -> str:
    if not names:
        return "nothing"
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


@contextlib.asynccontextmanager
async def connected_venue(
    address: str, patience_s: float, who: str | None = None, hint: str = ""
) -> AsyncIterator[VenueHistory]:
    venue = VenueHistory(address, patience_s, who, hint)
    try:
        yield venue
    finally:
        await venue.close()


@contextlib.asynccontextmanager
async def started_venue(
    name: str,
    args: Sequence[str],
    patience_s: float,
    say: Callable[[str], None],
    symbols: Sequence[str] = (),
) -> AsyncIterator[VenueHistory]:
    """The venue `name` run as a child process for the download (its log in a temporary file,
    whose tail is said when it does not start), stopped after. It serves `symbols` (`--symbols`),
    unless `args` name its symbols themselves (`--symbols` or `--config`): a symbol its exchange
    does not list is refused at its start, which is said naming it (NotFound)."""
    from trademesh.core.platform.service.process import start_service

    with tempfile.TemporaryDirectory(prefix="trademesh-download-") as folder:
        log_path = Path(folder) / f"{name}.log"
        base, _, account = name.partition(".")  # an account's venue (binance.desk-a): --account
        command = [
            "venue",
            base,
            *(["--account", account] if account else []),
            "--port",
            "0",
            "--metrics-port",
            "0",
        ]
        own = _names_symbols(args)
        named = bool(symbols) and not own
        if named:
            command += ["--symbols", ",".join(symbols)]
        command += args
        with log_path.open("w") as log:
            try:
                service = await asyncio.to_thread(start_service, command, _CHILD_ENV, _VENUE_START_S, log)
            except TrademeshError as exc:
                refused = _refused_symbols(log_path) if named else None
                if refused is not None:
                    raise NotFound(f"venue {name} does not serve the symbols asked for: {refused}") from None
                raise Unavailable(f"venue {name} did not start: {exc}{_tail(log_path)}") from None
            address = f"127.0.0.1:{service.port}"
            say(f"venue {name} started for the download (pid {service.process.pid}, {address})")
            # Given its own --config or --symbols, it serves theirs: a symbol missing is said so.
            hint = f"; it serves the symbols its {own} names (--venue-arg)" if own else ""
            try:
                async with connected_venue(address, patience_s, name, hint) as venue:
                    yield venue
            finally:
                code = await asyncio.to_thread(service.terminate)
                say(f"venue {name} stopped (exit code {code})")


def _names_symbols(args: Sequence[str]) -> str:
    """The venue argument that names its symbols (`--symbols`, `--config`, either `=VALUE`), or ""."""
    for arg in args:
        flag = arg.partition("=")[0]
        if flag in _OWN_SYMBOLS:
            return flag
    return ""


def _refused_symbols(path: Path) -> str | None:
    """The venue's refusal of its symbols (its CLI's one line `trademesh: symbols: ...`, exit
    code 2: a symbol its exchange, or the sim's config, has no market of), when that ended it."""
    lines = path.read_text(errors="replace").splitlines()
    last = lines[-1] if lines else ""
    return last.removeprefix(_SYMBOLS_REFUSED) if last.startswith(_SYMBOLS_REFUSED) else None


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    return "" if not lines else "; its log ends:\n  " + "\n  ".join(lines)
