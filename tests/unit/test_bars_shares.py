"""How bars replicas divide the trade streams (trademesh.core.bars.shares.plan: pure), and their options."""

from __future__ import annotations

import pytest

from tests.forked_services import run_command
from trademesh.core.bars.app import BarsConfig
from trademesh.core.bars.shares import members_group, plan, stream_consumer, stream_lease_name
from trademesh.core.platform.errors import InvalidArgument

STREAMS = [f"md.{{v{i}}}.trades" for i in range(5)]


def test_a_single_replica_wants_every_stream() -> None:
    todo = plan("a", set(), STREAMS, 1)
    assert todo.share == 5 and todo.give_back == [] and sorted(todo.wanted) == STREAMS


def test_a_replica_over_its_share_gives_back_the_rest_and_wants_nothing() -> None:
    todo = plan("a", set(STREAMS), STREAMS, 2)
    assert todo.share == 3
    assert todo.give_back == STREAMS[3:] and todo.wanted == []


def test_a_replica_at_its_share_keeps_it() -> None:
    todo = plan("a", set(STREAMS[:3]), STREAMS, 2)
    assert todo.give_back == [] and todo.wanted == []


def test_a_replica_under_its_share_wants_the_streams_it_does_not_hold() -> None:
    todo = plan("a", {STREAMS[0]}, STREAMS, 2)
    assert todo.give_back == [] and sorted(todo.wanted) == STREAMS[1:]


def test_a_held_stream_gone_from_the_bus_is_given_back() -> None:
    todo = plan("a", {STREAMS[0], "md.{gone}.trades"}, STREAMS[:2], 2)
    assert todo.give_back == ["md.{gone}.trades"] and todo.wanted == []


def test_replicas_try_streams_in_orders_of_their_own() -> None:
    orders = {tuple(plan(holder, set(), STREAMS, 2).wanted) for holder in "abcdefgh"}
    assert len(orders) > 1


def test_no_stream_no_work() -> None:
    todo = plan("a", set(), [], 3)
    assert todo.give_back == [] and todo.wanted == []


def test_names_belong_to_the_group_and_the_stream() -> None:
    assert stream_lease_name("bars", "md.{sim}.trades") == "bars.bars.md.{sim}.trades"
    assert stream_consumer("bars", "md.{sim}.trades") == "bars:md.{sim}.trades"
    assert members_group("bars", "md.{*}.trades") == "bars.bars.md.{*}.trades"


def test_a_streams_runner_reads_that_stream_alone_under_its_name() -> None:
    config = BarsConfig(redis_url="redis://127.0.0.1:6379/0", lease_ttl_ms=1500)
    options = config.consumer_options("md.{sim}.trades")
    assert (options.group, options.consumer) == ("bars", "bars:md.{sim}.trades")
    assert options.streams == ("md.{sim}.trades",) and options.patterns == ()
    assert options.handler_acks and options.claim_idle_ms == 3000


def test_a_lease_ttl_must_be_positive() -> None:
    with pytest.raises(InvalidArgument, match="lease-ttl-ms"):
        BarsConfig(redis_url="redis://127.0.0.1:6379/0", lease_ttl_ms=0)
    done = run_command(["bars", "--lease-ttl-ms", "0"], timeout_s=60)
    assert done.returncode == 2 and "--lease-ttl-ms" in done.stderr
