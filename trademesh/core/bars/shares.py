"""Which trade streams a bars replica works on: the pure part of the division (trademesh.core.bars.fleet).

A stream is one replica's at a time, under a lease named after the group and the stream; its
entries are read under a consumer name of the stream's own, so whoever holds it next reads the
entries its last holder left pending first, in stream order (what the checkpoint model needs).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from trademesh.core.platform.replicas.shares import share_of, wanted_order

__all__ = ["SharePlan", "members_group", "plan", "stream_consumer", "stream_lease_name"]


def stream_lease_name(group: str, stream: str) -> str:
    """The lease of one trade stream for the consumer group `group`: its key keeps the stream's
    hash tag (md.{<venue>}.trades: trademesh.core.platform.replicas.lease), so a commit fenced by it
    is in one slot."""
    return f"bars.{group}.{stream}"


def stream_consumer(consumer: str, stream: str) -> str:
    """The consumer name the holder of `stream` reads it under (the same for every holder)."""
    return f"{consumer}:{stream}"


def members_group(group: str, pattern: str) -> str:
    """The membership of the replicas dividing the streams of `pattern` for `group`."""
    return f"bars.{group}.{pattern}"


@dataclass(frozen=True)
class SharePlan:
    share: int  # how many streams this replica holds at most
    give_back: list[str]  # held streams over this replica's share, or gone from the bus
    wanted: list[str]  # streams to try, in this replica's order, until it holds its share


def plan(holder: str, held: Collection[str], streams: Iterable[str], members: int) -> SharePlan:
    """What a replica holding `held` does next, `members` replicas dividing `streams`: keep its
    share (ceil(streams / members)), give back the rest, try the others until it has its share."""
    present = set(streams)
    share = share_of(len(present), members)
    kept = sorted(stream for stream in held if stream in present)
    give_back = sorted(set(held) - set(kept[:share]))
    room = max(share - min(len(kept), share), 0)
    wanted = [stream for stream in wanted_order(holder, present) if stream not in held]
    return SharePlan(share, give_back, wanted if room else [])
