"""The detector's warm-up calls (GetCandles) to a real sim venue process: every patch warms over
the detector's one channel to the venue, and stopping closes it (seen from the machine's TCP
table: the connections this process opened to the venue's port)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.integration.support import TEST_TOKEN, Venue, until
from trademesh.core.detector.app import Detector
from trademesh.core.detector.config import EXAMPLES_DIR, DetectorConfig
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.config.mesh import MeshConfig, VenueLink
from trademesh.core.platform.errors import Unavailable

pytestmark = pytest.mark.integration

_ESTABLISHED = "01"


def _connections_to(port: int) -> dict[int, str]:
    """Local port -> TCP state (hex, as /proc/net/tcp) of every IPv4/IPv6 connection to `port`."""
    found = {}
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if int(remote.rpartition(":")[2], 16) == port:
                found[int(local.rpartition(":")[2], 16)] = state
    return found


def _detector(venue: Venue) -> Detector:
    config = DetectorConfig(
        mesh=MeshConfig((VenueLink("sim", venue.address),)),
        redis_url="redis://127.0.0.1:1",  # not reached: run() is not called
        database_url="postgresql://127.0.0.1:1/none",
    )
    return Detector(config)


async def test_every_patch_warms_over_one_channel_to_the_venue_closed_when_the_detector_stops(
    venue: Venue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    detector = _detector(venue)
    patches = []
    for name in ("trend", "mean_reversion"):
        strategy = load_strategy(EXAMPLES_DIR / f"{name}.toml", detector.catalog)
        patches += build_patches(detector.engine, strategy, time.time_ns())
    assert len(patches) >= 3
    port = int(venue.address.rpartition(":")[2])
    before = set(_connections_to(port))

    with caplog.at_level(logging.WARNING, logger="trademesh.core.detector.history"):
        for patch in patches:
            await detector.warm_up(patch.id)

    assert not [r.message for r in caplog.records], "every GetCandles call was answered"
    opened = {local: state for local, state in _connections_to(port).items() if local not in before}
    assert list(opened.values()) == [_ESTABLISHED], f"one connection for {len(patches)} warm-ups: {opened}"

    await detector.channels.close()
    (local,) = opened

    async def closed() -> bool | None:  # the kernel shows it a moment later on a loaded machine
        return True if _connections_to(port).get(local) != _ESTABLISHED else None

    await until(closed, 10, 0.05, "the connection closed when the detector stops")
    with pytest.raises(Unavailable):
        await detector.warm_up(patches[0].id)
