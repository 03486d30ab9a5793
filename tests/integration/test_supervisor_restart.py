"""`trademesh up`'s supervisor restarts a crashed inspector (or venue) within a bound well under
the dead-man switch's ttl however often it crashes: their absence costs protection. Real child
processes, started as `up` starts them (trademesh.core.cli.mesh.up's spec of the service)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import re
from pathlib import Path

import pytest

from tests.integration.support import until
from trademesh.core.cli.mesh.supervisor import RESTART_DELAY_MAX_S, Child, ChildSpec
from trademesh.core.cli.mesh.up import UpOptions, _Mesh
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import SERVICES

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a dozen Python starts

_DELAY = re.compile(r"\[supervisor\] exited with \S+; restarting in ([\d.]+) s")


def up_spec(service: str, tmp_path: Path) -> ChildSpec:
    entry = SERVICES[service]
    return _Mesh(UpOptions(data_dir=tmp_path), {}).spec(entry, load_command(entry))


async def restart_delays(spec: ChildSpec, count: int) -> list[float]:
    """The supervisor's delays before `count` restarts of a child that crashes at every start."""
    out = io.StringIO()
    child = Child(spec, 10, out)
    with pytest.raises(Unavailable):
        await child.start()
    stop = asyncio.Event()
    task = asyncio.create_task(child.supervise(stop))

    async def delays() -> list[float] | None:
        found = [float(d) for d in _DELAY.findall(out.getvalue())]
        return found if len(found) >= count else None

    try:
        return await until(delays, 120, 0.1, f"{count} restarts")
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await child.stop()


@pytest.mark.parametrize("service", ["inspector", "venue"])
async def test_a_crashing_service_that_protects_positions_is_restarted_within_a_second(
    tmp_path: Path, service: str
) -> None:
    # The service as `up` runs it, but crashing at every start (an unknown venue: exit 2).
    spec = dataclasses.replace(up_spec(service, tmp_path), args=lambda info: ["venue", "nosuch"])
    delays = await restart_delays(spec, 5)
    # The backoff doubles from 0.5 s: without a bound the fourth delay is 2 to 6 s, the fifth 4 to 12.
    assert max(delays) <= 1.0, delays


def test_other_services_keep_the_usual_backoff(tmp_path: Path) -> None:
    assert up_spec("recorder", tmp_path).restart_delay_max_s == RESTART_DELAY_MAX_S
    assert up_spec("inspector", tmp_path).restart_delay_max_s < RESTART_DELAY_MAX_S
