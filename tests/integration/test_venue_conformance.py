"""Every venue this repository ships keeps the venue contract: `python -m trademesh.core.cli venue-check`
(the real CLI, a process of its own) run against the sim, a paper venue and each live venue on
its recorded session (its replay stand-in, `--replay`), each a real venue process started as an
operator would, with both tokens.

Each venue is checked once, whole (the last check drains it), and must conform: exit code 0,
no check failed, and the skips exactly those its Admin capabilities call for (no funding stream
on a spot pair, no candle stream where the venue has none). The runs go three at a time: each
is mostly waiting on its venue (the dead-man's second, the streams' quiet).

What a stand-in cannot serve would be left out of its run with --skip, each with its reason
(Case.left_out): none is today. Every stand-in serves its exchange's candle history endpoint, so
every venue pages through its candles (`candles.paging`), its trade history where its venue reads
one (`trades.history`) and its tickers (`tickers.all`), and each trades its default instrument.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.forked_services import run_command
from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.replay_keys import coinbase_keys, replay_keys
from tests.integration.support import VENUE_ENV, Venue, start_venue, stop_venue
from trademesh.core.venue_check.checks import MODULES  # noqa: F401  (registers the checks)
from trademesh.core.venue_check.registry import CHECKS

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # venue processes, replay stand-ins

# Venues checked at once: each run mostly waits on its venue.
_AT_ONCE = 3
_KIT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Case:
    id: str
    venue: str  # the registry's name, and what GetStatus names
    capture: str | None  # the recorded session; None: the sim
    # The checks the venue's capabilities skip (every other one must pass).
    skipped: frozenset[str]
    env: dict[str, str] = field(default_factory=dict)
    paper: bool = False
    # Checks left out of the run: {check: why its stand-in cannot serve it}.
    left_out: dict[str, str] = field(default_factory=dict)
    # The instrument to trade when the default is not tradable on the recording.
    symbol: str | None = None


_SPOT = frozenset({"subscribe.funding"})
# Bybit's public trades (ccxt fetch_trades) are its latest ones only, no range of the past: its
# venue serves no GetTrades (capabilities.trade_history false).
_NO_TRADE_HISTORY = frozenset({"trades.history"})
CASES = [
    Case("sim", "sim", None, _SPOT),
    Case("paper-binance", "binance", "BINANCE", _SPOT, paper=True),
    Case("binance", "binance", "BINANCE", _SPOT, replay_keys("BINANCE")),
    Case("bybit", "bybit", "BYBIT", _SPOT | _NO_TRADE_HISTORY, replay_keys("BYBIT")),
    Case("kraken", "kraken", "KRAKEN", _SPOT, replay_keys("KRAKEN", "cmVwbGF5LWtyYWtlbi1zZWNyZXQtOWYzYQ==")),
    Case("okx", "okx", "OKX", _SPOT, replay_keys("OKX", passphrase=True)),
    # ccxt.pro has no candle stream for Coinbase.
    Case("coinbase", "coinbase", "COINBASE", _SPOT | {"subscribe.candles"}, coinbase_keys()),
    Case("binanceusdm", "binanceusdm", "BINANCE_FUTURES", frozenset(), replay_keys("BINANCEUSDM")),
    Case("okx-swap", "okx-swap", "OKX_SWAP", frozenset(), replay_keys("OKX_SWAP", passphrase=True)),
    # The recording holds options only: no funding rate.
    Case("deribit", "deribit", "DERIBIT", _SPOT, replay_keys("DERIBIT")),
]  # fmt: skip


def _start(case: Case, directory: Path) -> tuple[Venue, IO[str]]:
    directory.mkdir()
    if case.capture is None:
        return start_venue(directory, None, case.id)
    extra = ["--paper"] if case.paper else []
    return start_replay_venue(
        directory, case.venue, capture_files(case.capture), env={**VENUE_ENV, **case.env}, extra=extra
    )


def _kit(case: Case, venue: Venue) -> subprocess.CompletedProcess[str]:
    args = ["venue-check", venue.address, "--json"]
    args += [f"--skip={name}" for name in case.left_out]
    args += [] if case.symbol is None else ["--symbol", case.symbol]
    # The tokens from the environment, as an operator gives them (never on the command line).
    return run_command(args, env={**os.environ, **VENUE_ENV}, timeout_s=_KIT_TIMEOUT_S)


class Runs:
    """The kit's run of each selected case, started in the cases' order, _AT_ONCE at a time."""

    def __init__(self, directory: Path, selected: list[Case]) -> None:
        self._directory = directory
        self._gate = asyncio.Semaphore(_AT_ONCE)
        self._runs = {
            case.id: asyncio.create_task(self._run(case), name=f"venue-check-{case.id}") for case in selected
        }

    async def _run(self, case: Case) -> tuple[subprocess.CompletedProcess[str], str]:
        async with self._gate:
            venue, log = await asyncio.to_thread(_start, case, self._directory / case.id)
            try:
                done = await asyncio.to_thread(_kit, case, venue)
            finally:
                await stop_venue(venue, log)
            return done, venue.log()[-3000:]

    async def of(self, case: Case) -> tuple[subprocess.CompletedProcess[str], str]:
        return await self._runs[case.id]

    async def close(self) -> None:
        for task in self._runs.values():
            task.cancel()
        for task in self._runs.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _selected(session: pytest.Session) -> list[Case]:
    """The cases this session runs (-k may leave some out): only those are started."""
    wanted = {
        param.id
        for item in session.items
        if isinstance(item, pytest.Function) and item.module is not None and item.module.__name__ == __name__
        for param in [item.callspec.params.get("case")]
        if isinstance(param, Case)
    }
    return [case for case in CASES if case.id in wanted]


@pytest.fixture(scope="module")
async def runs(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Runs]:
    started = Runs(tmp_path_factory.mktemp("venue-check"), _selected(request.session))
    try:
        yield started
    finally:
        await started.close()


def _failure(done: subprocess.CompletedProcess[str], venue_log: str) -> str:
    return f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}\nvenue log:\n{venue_log}"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_the_venue_passes_every_check_its_capabilities_call_for(runs: Runs, case: Case) -> None:
    done, venue_log = await runs.of(case)
    assert done.returncode == 0, _failure(done, venue_log)
    assert done.stderr == "", done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["venue"] == case.venue and report["conforms"] and report["failed"] == 0
    outcomes = {check["name"]: check["outcome"] for check in report["checks"]}
    assert list(outcomes) == [name for name in CHECKS if name not in case.left_out], "every check, in order"
    skipped = {name for name, outcome in outcomes.items() if outcome == "skip"}
    assert skipped == case.skipped, _failure(done, venue_log)
    reasons = [c["reason"] for c in report["checks"] if c["outcome"] == "skip"]
    assert all(reason.startswith("GetStatus") for reason in reasons), reasons
    assert report["notes"] == [], "the kit left the venue as it found it (every order it placed ended)"
