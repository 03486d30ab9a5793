"""The README's main job today: `trademesh demo` starts the sim venue and trades on it."""

from __future__ import annotations

import pytest

from tests.forked_services import run_command

pytestmark = pytest.mark.integration


@pytest.mark.slow  # the whole demo run: not in the fast tier
def test_demo_streams_trades_places_an_order_and_stops_the_venue_cleanly() -> None:
    done = run_command(["demo", "--rounds", "1"], timeout_s=90)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(" trade  BTC/USDT " in line for line in lines)
    assert any(">>> ORDER" in line and " OPEN buy 0.05 @ " in line for line in lines)
    assert lines[0].startswith("sim venue serving on 127.0.0.1:")
    assert lines[-1] == "sim venue stopped (exit code 0)"
    # The generated token is a secret: it must not be printed.
    assert "Bearer" not in done.stdout and "token" not in done.stdout.replace("auth on", "")
