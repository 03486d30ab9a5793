"""The bridge's --group: `{hostname}` becomes the host's name, so one compose service of
replicas gives each its own group; a name left with braces or empty is refused."""

from __future__ import annotations

import socket

import pytest

from trademesh.core.bridge.command import replica_group
from trademesh.core.bridge.config import BridgeConfig
from trademesh.core.platform.errors import InvalidArgument


def test_hostname_in_the_group_is_the_hosts_name() -> None:
    assert replica_group("bridge-{hostname}") == f"bridge-{socket.gethostname()}"
    assert replica_group("bridge") == "bridge"


@pytest.mark.parametrize("bad", ["", "bridge-{host}", "bridge-}"])
def test_a_group_that_is_not_a_name_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="group"):
        BridgeConfig(redis_url="redis://127.0.0.1:6379/0", group=bad)
