"""REDIS_URL for a Redis Cluster (trademesh.core.platform.bus.redis.open_redis): the scheme, its nodes,
its credentials, and what a cluster cannot take; the setting accepts it
(trademesh.core.platform.config.env)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from trademesh.core.platform.bus.redis import is_cluster, open_redis, slot_groups
from trademesh.core.platform.config.env import REDIS_SCHEMES
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import check_url, redact_url


def test_a_cluster_url_names_every_node_given_with_its_credentials_and_the_timeouts() -> None:
    client: Any = open_redis("redis+cluster://u:secret@127.0.0.1:7000,[::1]:7001/0")
    assert is_cluster(client)
    assert sorted(client.nodes_manager.startup_nodes) == ["127.0.0.1:7000", "::1:7001"]
    assert (client.connection_kwargs["username"], client.connection_kwargs["password"]) == ("u", "secret")
    assert client.connection_kwargs["socket_timeout"] == 10.0


def test_a_tls_cluster_url_connects_with_tls_and_a_plain_url_stays_one_redis() -> None:
    tls: Any = open_redis("rediss+cluster://h1:7000")
    assert tls.connection_kwargs["connection_class"].__name__ == "SSLConnection"
    plain = open_redis("redis://127.0.0.1:6379/3")
    assert isinstance(plain, aioredis.Redis) and not is_cluster(plain)
    assert slot_groups(plain, ["md.{a}.trades", "md.{b}.trades"]) == [["md.{a}.trades", "md.{b}.trades"]]


@pytest.mark.parametrize("url", ["redis+cluster://h:7000/2", "redis+cluster://u:p@/0"])
def test_a_cluster_url_with_a_database_or_without_a_node_is_refused_by_its_setting(url: str) -> None:
    with pytest.raises(InvalidArgument, match=r"REDIS_URL|redis-url"):
        open_redis(url)


def test_the_setting_takes_a_cluster_url_and_shows_it_without_its_password() -> None:
    url = "redis+cluster://:secret@10.0.0.1:7000,10.0.0.2:7000"
    assert check_url(url, REDIS_SCHEMES, "REDIS_URL") == url
    assert redact_url(url) == "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7000"
    with pytest.raises(InvalidArgument, match="is not a"):
        check_url("redis+cluster://h:notaport", REDIS_SCHEMES, "REDIS_URL")
