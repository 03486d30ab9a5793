"""Run services as child processes: prefixed logs, wait for healthy, restart on crash, stop in order.

Each child is `python -m trademesh.core.cli <args>`; it prints a JSON serving line once it
serves (trademesh.core.platform.service.process) and answers gRPC health. A standby of a
single writer prints a standby line instead: it is up, and kept (its readiness waited on, not
its serving; it serves once it leads). Its stdout and stderr are copied to ours, each line
prefixed with the child's name (through trademesh.core.cli.mesh.output: `up` keeps a service's
INFO lines off the terminal unless --verbose, and writes them all to its log file). A child
that exits while the mesh runs is restarted with backoff; on stop, children get SIGTERM in
reverse start order (SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from trademesh.core.cli.mesh.output import CalmLines, MeshOutput
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.config.env import LEASE_HOLDER
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.rpc.health_probe import check_health
from trademesh.core.platform.rpc.server import READINESS_SERVICE
from trademesh.core.platform.service.process import STARTED_EVENTS

__all__ = ["RESTART_DELAY_MAX_S", "Child", "ChildSpec"]

log = logging.getLogger(__name__)

_SERVING_TIMEOUT_S = 60.0
_HEALTHY_TIMEOUT_S = 30.0
_STOP_GRACE_S = 10.0
# A child that ran this long before crashing starts its restart backoff afresh.
_STABLE_S = 30.0
# The restart backoff: its first delay, and (unless the child's spec bounds it lower) its longest.
_RESTART_FIRST_S = 0.5
RESTART_DELAY_MAX_S = 10.0


@dataclass
class ChildSpec:
    name: str
    # Arguments after `python -m trademesh.core.cli`, rebuilt before each start from what the child's
    # last serving line said (empty before the first start): a restart can keep its ports.
    args: Callable[[dict[str, Any]], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    # The longest wait before a restart after a crash, jitter included: lower for a service whose
    # absence costs protection (trademesh.core.platform.service.registry's restart_delay_max_s).
    restart_delay_max_s: float = RESTART_DELAY_MAX_S


class Child:
    def __init__(self, spec: ChildSpec, width: int, out: TextIO | MeshOutput | None = None) -> None:
        """`out`: where its lines go, a MeshOutput (`up`'s) or a stream that gets every line
        (default sys.stdout)."""
        self.spec = spec
        self.prefix = f"{spec.name:<{width}} | "
        self.out = out if isinstance(out, MeshOutput) else MeshOutput(out)
        self.process: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}
        # The process whose serving line `info` is (0: none yet): after a restart, info is the
        # last process's until the new one reports serving.
        self.serving_pid = 0
        self.restarts = 0
        self.stopping = False
        self._serving: asyncio.Future[dict[str, Any]] | None = None
        self._pumps: list[asyncio.Task[None]] = []
        # How long a started process has to say SERVING on its health once it reported serving,
        # and how long it has to report serving (or standing by) at all.
        self.healthy_timeout_s = _HEALTHY_TIMEOUT_S
        self.serving_timeout_s = _SERVING_TIMEOUT_S
        # Its name as a lease holder, the same across its restarts (each starts after the last
        # one exited): a restarted child takes its leases back at once (trademesh.core.platform.config.env).
        self._holder = f"{spec.name}.{uuid.uuid4().hex[:8]}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    @property
    def address(self) -> str:
        return f"{self.info['host']}:{self.info['port']}"

    @property
    def standing_by(self) -> bool:
        """Whether it started as a standby (it may lead by now: its serving line is not waited on)."""
        return self.info.get("event") == "standby"

    @property
    def grpc_address(self) -> str:
        """Where it answers gRPC health: its port, or its grpc_port when it serves HTTP (gateway)."""
        return f"{self.info['host']}:{self.info.get('grpc_port', self.info['port'])}"

    async def start(self) -> None:
        """Start the process and wait until it serves and its health says SERVING, or it stands by
        and its readiness says SERVING (able to take over)."""
        self._serving = asyncio.get_running_loop().create_future()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "trademesh.core.cli",
            *self.spec.args(self.info),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, LEASE_HOLDER: self._holder, **self.spec.env},
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(self.process.stdout, watch_serving=True)),
            asyncio.create_task(self._pump(self.process.stderr, watch_serving=False)),
        ]
        self.info = await self._wait_serving()
        self.serving_pid = self.process.pid
        await self.wait_healthy()

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart the child whenever it exits, until stop."""
        bound = self.spec.restart_delay_max_s
        backoff = Backoff(min(_RESTART_FIRST_S, bound), bound)
        while not stop.is_set():
            assert self.process is not None
            started = asyncio.get_running_loop().time()
            code = await self.process.wait()
            if stop.is_set() or self.stopping:
                return
            if asyncio.get_running_loop().time() - started > _STABLE_S:
                backoff.reset()
            delay = min(backoff.next(), bound)  # the jitter reaches 1.5 times the nominal delay
            self._say(f"exited with {code}; restarting in {delay:.2f} s")
            await asyncio.sleep(delay)
            if stop.is_set():
                return
            self.restarts += 1
            try:
                await self.start()
                doing = "standing by" if self.standing_by else "serving"
                self._say(f"restarted (restart {self.restarts}), {doing} on {self.address} (pid {self.pid})")
            except Unavailable as exc:
                self._say(f"restart failed: {exc}")

    async def stop(self) -> int | None:
        self.stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), _STOP_GRACE_S)
        except TimeoutError:
            self._say(f"did not stop within {_STOP_GRACE_S:.0f} s; killing it")
            process.kill()
            code = await process.wait()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return code

    async def _wait_serving(self) -> dict[str, Any]:
        assert self._serving is not None and self.process is not None
        exited: asyncio.Future[Any] = asyncio.ensure_future(self.process.wait())
        serving: asyncio.Future[Any] = self._serving
        try:
            done, _ = await asyncio.wait(
                {serving, exited}, timeout=self.serving_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            exited.cancel()
        if self._serving in done:
            return self._serving.result()
        if self.process.returncode is not None:
            raise Unavailable(f"{self.spec.name} exited with {self.process.returncode} before serving")
        self.process.kill()
        raise Unavailable(f"{self.spec.name} did not report serving within {self.serving_timeout_s:.0f} s")

    async def wait_healthy(self) -> None:
        """Until its health says SERVING (a standby's readiness: it has no API to serve yet). A
        process that exits meanwhile ends the wait at once (a kill during a restart costs the
        restart, not the whole wait); one still not healthy at the deadline is killed, so that
        `supervise` restarts it rather than wait on it."""
        assert self.process is not None
        process = self.process
        service = READINESS_SERVICE if self.standing_by else ""
        deadline = asyncio.get_running_loop().time() + self.healthy_timeout_s
        exited: asyncio.Future[Any] = asyncio.ensure_future(process.wait())
        try:
            while True:
                try:
                    if await check_health(self.grpc_address, service, timeout_s=2.0) == "SERVING":
                        return
                except Unavailable:
                    pass
                if exited.done():
                    code = process.returncode
                    raise Unavailable(f"{self.spec.name} exited with {code} before it was healthy")
                if asyncio.get_running_loop().time() > deadline:
                    process.kill()
                    raise Unavailable(f"{self.spec.name} at {self.grpc_address} is not healthy")
                await asyncio.wait({exited}, timeout=0.2)  # the next look, or at once when it exits
        finally:
            exited.cancel()

    async def _pump(self, stream: asyncio.StreamReader, watch_serving: bool) -> None:
        calm = CalmLines()
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip("\n")
            if (
                watch_serving
                and text.startswith("{")
                and self._serving is not None
                and not self._serving.done()
            ):
                info = _serving_line(text)
                if info is not None:
                    self._serving.set_result(info)
            self.out.line(self.prefix + text, self.out.verbose or calm.shown(text))

    def _say(self, text: str) -> None:
        self.out.line(f"{self.prefix}[supervisor] {text}")


def _serving_line(text: str) -> dict[str, Any] | None:
    try:
        info = json.loads(text)
    except ValueError:
        return None
    return info if isinstance(info, dict) and info.get("event") in STARTED_EVENTS else None
