"""The bars' and the bridge's --linger-ms: a whole number of ms, 0 or more, at the command line
and in their configs (NaN, which compares false both ways, included)."""

from __future__ import annotations

import pytest

from tests.forked_services import run_command
from trademesh.core.bars.app import BarsConfig
from trademesh.core.bridge.config import BridgeConfig
from trademesh.core.platform.errors import InvalidArgument


@pytest.mark.parametrize("config", [BarsConfig, BridgeConfig])
@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_config_refuses_a_linger_that_is_not_0_or_more(config: type, bad: float) -> None:
    with pytest.raises(InvalidArgument, match="linger-ms"):
        config(redis_url="redis://127.0.0.1:6379/0", linger_ms=bad)


@pytest.mark.parametrize("service", ["bars", "bridge"])
def test_the_command_line_names_a_bad_linger(service: str) -> None:
    done = run_command([service, "--linger-ms", "nan"], timeout_s=60)
    assert done.returncode == 2
    assert "--linger-ms: 'nan' is not a whole number" in done.stderr
