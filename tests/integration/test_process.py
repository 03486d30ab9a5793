"""Starting services as child processes (trademesh.core.platform.service.process), as the demo and the tests
do: exec'd as production starts them, and forked from the test suite's fork server
(tests/forked_services.py)."""

from __future__ import annotations

import time

import pytest

import trademesh.core.platform.service.process
from tests import forked_services
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.service.process import start_service

pytestmark = pytest.mark.integration


@pytest.fixture(params=["exec", "fork"], autouse=True)
def launcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        trademesh.core.platform.service.process,
        "launcher",
        forked_services.launch if request.param == "fork" else None,
    )


def test_a_service_that_does_not_serve_in_time_is_killed_and_reported() -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not report serving within 0\.01 s"):
        start_service(["venue", "sim", "--port", "0", "--metrics-port", "-1"], timeout_s=0.01)
    assert time.monotonic() - started < 5


def test_a_service_that_exits_before_serving_is_reported_with_its_exit_code() -> None:
    with pytest.raises(Unavailable, match=r"exited with 2 before serving"):
        start_service(["venue", "sim", "--config", "/nonexistent.toml", "--port", "0"])


def test_a_service_serves_and_stops_on_sigterm() -> None:
    service = start_service(["venue", "sim", "--port", "0", "--metrics-port", "-1"])
    assert service.port > 0 and service.process.poll() is None
    assert service.terminate() == 0
