"""The recorder as the tests that write through it use it: a real `Recorder` on the test's own
database with the recorder's migrations and partitions (the `recorder` fixture, on
`recorder_database`; import it into a test module, with `recorder_database` and `database_url`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool

__all__ = ["recorder"]


@pytest.fixture
async def recorder(recorder_database: str) -> AsyncIterator[Recorder]:
    pool = await open_pool(recorder_database)
    try:
        options = RecorderConfig(database_url=recorder_database, redis_url="redis://unused")
        yield Recorder(pool, await prepare(pool, options), options)
    finally:
        await pool.close()
