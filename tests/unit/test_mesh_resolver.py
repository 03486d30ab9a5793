"""trademesh.core.tools.resolver.MeshResolver over a registry that lists replicas of one name."""

from __future__ import annotations

import pytest

from trademesh.core.platform.errors import FailedPrecondition, NotFound
from trademesh.core.tools.resolver import Instance, MeshResolver

MD = "trademesh.marketdata.v1.MarketData"
LEDGER = "trademesh.ledger.v1.Ledger"


def _resolver(*registered: Instance, given: tuple[Instance, ...] = ()) -> MeshResolver:
    resolver = MeshResolver(None, given)
    resolver._registered = list(registered)
    return resolver


def test_replicas_of_one_name_are_one_name_and_calls_go_to_the_newest() -> None:
    resolver = _resolver(
        Instance("ledger", "10.0.0.2:8010", (LEDGER,), registered_at_ns=2),
        Instance("ledger", "10.0.0.1:8010", (LEDGER,), registered_at_ns=1),
    )
    assert resolver.names(LEDGER) == ["ledger"]
    assert resolver.resolve(LEDGER, None) == "10.0.0.2:8010"
    assert resolver.resolve(LEDGER, "ledger") == "10.0.0.2:8010"


def test_several_names_still_need_a_target_and_a_given_instance_wins() -> None:
    resolver = _resolver(
        Instance("sim", "10.0.0.1:5070", (MD,), 1),
        Instance("sim", "10.0.0.2:5070", (MD,), 2),
        Instance("binance", "10.0.0.3:5060", (MD,), 1),
        given=(Instance("sim", "127.0.0.1:5070", (MD,)),),
    )
    with pytest.raises(FailedPrecondition, match=r"2 instances serve .* \(binance, sim\)"):
        resolver.resolve(MD, None)
    assert resolver.resolve(MD, "sim") == "127.0.0.1:5070"
    with pytest.raises(NotFound, match="serving it: binance, sim"):
        resolver.resolve(MD, "kraken")
