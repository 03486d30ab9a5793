"""Starting services as child processes (core.process), as the demo and the tests do."""

from __future__ import annotations

import time

import pytest

from core.errors import Unavailable
from core.process import start_service

pytestmark = pytest.mark.integration


def test_a_service_that_does_not_serve_in_time_is_killed_and_reported() -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not report serving within 0\.01 s"):
        start_service(["venue", "sim", "--port", "0", "--metrics-port", "-1"], timeout_s=0.01)
    assert time.monotonic() - started < 5


def test_a_service_that_exits_before_serving_is_reported_with_its_exit_code() -> None:
    with pytest.raises(Unavailable, match=r"exited with 2 before serving"):
        start_service(["venue", "sim", "--config", "/nonexistent.toml", "--port", "0"])
