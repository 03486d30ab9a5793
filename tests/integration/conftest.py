"""Fixtures of the integration tests: a shared sim venue process, dedicated ones, stubs, and the
shared replay venues (`replay_sessions`, defined in replay.py, one per test process) and the
session's Redis Cluster (`redis_cluster_url`, redis_cluster.py) and a test's bus on one Redis and
on that cluster (`bus_url`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import pytest

from tests.integration.redis_cluster import bus_url, redis_cluster_url
from tests.integration.redis_server import redis_url
from tests.integration.replay import replay_sessions
from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, VenueFactory, start_venue, stop_venue
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

# The fixtures, for pytest. The Redis Cluster is here, not imported by each module that uses it: one
# for the session (a fixture imported into a module is that module's own).
__all__ = ["bus_url", "redis_cluster_url", "redis_url", "replay_sessions"]


@pytest.fixture(scope="session")
async def venue(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Venue]:
    """The shared sim venue, default configuration. Tests leave no open orders behind on it."""
    started, log_file = start_venue(tmp_path_factory.mktemp("venue"), None, "shared")
    yield started
    await stop_venue(started, log_file)


@pytest.fixture
async def fresh_venue(tmp_path: Path) -> AsyncIterator[VenueFactory]:
    """Starts dedicated venues (for tests that drain, stop or reconfigure one); stops them after."""
    started: list[tuple[Venue, IO[str]]] = []

    def start(config: str | None = None, name: str = "venue", env: dict[str, str] | None = None) -> Venue:
        item = start_venue(tmp_path, config, f"{name}-{len(started)}", env)
        started.append(item)
        return item[0]

    yield start
    for item in started:
        await stop_venue(*item)


@pytest.fixture
async def stubs(venue: Venue) -> AsyncIterator[Stubs]:
    """Stubs on the shared venue with the trading credential (the test stands in for the inspector)."""
    found = venue.stubs()
    yield found
    await found.close()


@pytest.fixture
async def no_open_orders(stubs: Stubs) -> AsyncIterator[None]:
    """Trading tests start and end with no open orders, so fills of one never leak into another."""
    await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    yield
    await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
