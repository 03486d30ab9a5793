"""trademesh.core.platform.aio.unbroken: work its caller's cancellation does not stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from trademesh.core.platform.aio.unbroken import Unbroken


async def test_a_caller_cancelled_leaves_and_the_work_goes_on_to_its_end() -> None:
    unbroken, release, steps = Unbroken("test"), asyncio.Event(), []

    async def work() -> str:
        steps.append("first")
        await release.wait()
        steps.append("second")  # what a cancelled handler never reached
        return "done"

    caller = asyncio.create_task(unbroken.run(work()))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert steps == ["first"] and unbroken.under_way == 1
    release.set()
    await unbroken.close()
    assert steps == ["first", "second"] and unbroken.under_way == 0


async def test_a_caller_that_stays_gets_the_result_or_the_error() -> None:
    unbroken = Unbroken("test")

    async def fails() -> None:
        raise ValueError("refused")

    async def answers() -> int:
        return 7

    assert await unbroken.run(answers()) == 7
    with pytest.raises(ValueError, match="refused"):
        await unbroken.run(fails())
    assert unbroken.under_way == 0


async def test_the_error_of_work_whose_caller_left_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    unbroken, release = Unbroken("inspector"), asyncio.Event()

    async def fails_later() -> None:
        await release.wait()
        raise RuntimeError("the venue refused")

    caller = asyncio.create_task(unbroken.run(fails_later()))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    with caplog.at_level(logging.WARNING, logger="trademesh.core.platform.aio.unbroken"):
        release.set()
        await unbroken.close()
    assert "inspector: work its caller left ended with the venue refused" in caplog.text
