"""The screen MCP tool (trademesh.core.tools.screens) against the Screener's own gRPC service in this
process, its results published as the service's loop publishes them: a screen's latest result
rendered (decimal strings, ISO times), null before the first evaluation, and a name not loaded
refused naming the tool's argument, before asking for a result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.screener_support import NOW, instrument
from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.core.platform.rpc.server import ServerOptions, create_server
from trademesh.core.screener.api import screener_service
from trademesh.core.screener.convert import result_to_pb
from trademesh.core.screener.engine.definition import parse_screen
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.watchers import Results
from trademesh.core.tools.screens import SCREENER, ScreenTools
from trademesh.core.tools.upstream import Upstream

SCREEN = """
name = "{name}"
venue = "sim"
[bars]
timeframe = "1h"
momentum = 2
[score]
weights = {{ momentum = 1.0 }}
"""


class _At:
    def __init__(self, address: str | None) -> None:
        self.address = address

    def resolve(self, service: str, target: str | None) -> str:
        assert service == SCREENER
        if self.address is None:
            raise NotFound(f"no live instance serves {service} (is it running, registered with the gateway?)")
        return self.address

    def names(self, service: str) -> list[str]:
        return [] if self.address is None else ["screener"]


@dataclass
class Served:
    tools: ScreenTools
    results: Results


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    screens = {name: parse_screen(SCREEN.format(name=name), f"{name}.toml") for name in ("movers", "quiet")}
    results = Results(screens)
    items = [instrument("UP/USDT", [100, 110, 125]), instrument("FLAT/USDT", [100, 100, 100])]
    results.publish(result_to_pb(evaluate(screens["movers"], items, NOW)))
    server = await create_server([screener_service(results)], ServerOptions())
    upstream = Upstream(_At(f"127.0.0.1:{server.port}"), 5.0)
    try:
        yield Served(ScreenTools(upstream), results)
    finally:
        await upstream.close()
        await server.server.stop(None)


async def test_a_screens_latest_result_is_shown_ranked_with_decimal_metrics(served: Served) -> None:
    got = await served.tools.screen("movers")
    assert got["screens"] == ["movers", "quiet"]
    result = got["result"]
    assert (result["screen"], result["venue"], result["universe"], result["left_out"]) == (
        "movers",
        "sim",
        2,
        0,
    )
    assert [(r["rank"], r["symbol"]) for r in result["ranked"]] == [(1, "UP/USDT"), (2, "FLAT/USDT")]
    assert result["ranked"][0]["metrics"] == {"momentum": "0.25"}
    assert result["ranked"][1]["metrics"] == {"momentum": "0.0"}
    assert result["computed_ns"] == NOW and result["computed"].endswith("Z")


async def test_a_screen_not_evaluated_yet_has_no_result(served: Served) -> None:
    assert await served.tools.screen("quiet") == {"screens": ["movers", "quiet"], "result": None}


async def test_a_name_not_loaded_is_refused_naming_the_argument(served: Served) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await served.tools.screen("Nope")
    [violation] = caught.value.violations
    assert violation.field == "name"
    assert violation.description == "'Nope' is not a screen loaded (loaded: movers, quiet)"
