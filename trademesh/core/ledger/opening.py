"""The books' first start: every venue's balances posted as opening deposits, once.

The executions are read from the moment the balances are (each stream's group set to its end
just before they are asked): what came before is in the balances. A venue that cannot answer
yet (not serving, a call past its deadline on a loaded machine) is asked again, with the others,
until every venue has answered: books opened without a venue's balance would refuse that venue's
every fill (its cash account would go below zero). Only the venue's own answer that it has no
account (no credentials, no balances API) opens its books without a deposit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

import grpc

from trademesh.core.ledger.engine.events import DepositEvent, Event
from trademesh.core.ledger.venues import LedgerVenues
from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.bus.redis import REDIS_UNREACHABLE, BusRedis
from trademesh.core.platform.errors import NotFound, TrademeshError
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["NO_ACCOUNT", "OpeningUnanswered", "opening_deposits", "read_openings"]

log = logging.getLogger(__name__)


# A venue's answers that say it has no account to open: its books open without a deposit.
NO_ACCOUNT = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,  # no credentials
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)


class OpeningUnanswered(TrademeshError):
    """Some venue could not answer for its balances yet: the round is made again."""


def opening_deposits(venue: str, balances: Sequence[tf.Balance], now_ns: int) -> list[Event]:
    """The deposits that open `venue`'s books: one per asset held."""
    return [
        DepositEvent(f"opening/{venue}/{b.asset}", venue, b.asset, amount, now_ns)
        for b in balances
        if (amount := _amount(b)) > 0
    ]


async def read_openings(
    redis: BusRedis,
    group: str,
    streams: Mapping[str, str],
    venues: LedgerVenues,
    now_ns: Callable[[], int],
    stop: asyncio.Event,
) -> list[Event] | None:
    """Every venue's opening deposits (`streams`: each venue's executions stream, whose group is
    set to its end at each round, just before the venues are asked), asked until every venue
    answered; None when `stop` came first."""

    async def round_() -> list[Event]:
        try:
            for stream in streams.values():
                await redis.xgroup_setid(stream, group, "$")
        except REDIS_UNREACHABLE as exc:
            raise OpeningUnanswered(f"the bus: {exc}") from exc
        at = now_ns()
        answers = await asyncio.gather(*(_deposits(venues, venue, at) for venue in streams))
        unanswered = [venue for venue, events in zip(streams, answers, strict=True) if events is None]
        if unanswered:
            raise OpeningUnanswered(f"no answer yet from {', '.join(unanswered)}")
        return [event for events in answers if events is not None for event in events]

    what = "ledger: the venues' balances, to open the books,"
    return await until_reachable(round_, what=what, retry_on=(OpeningUnanswered,), stop=stop)


async def _deposits(venues: LedgerVenues, venue: str, now_ns: int) -> list[Event] | None:
    """`venue`'s opening deposits; [] when it has no account; None when it could not answer."""
    try:
        return opening_deposits(venue, await venues.balances(venue), now_ns)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in NO_ACCOUNT:
            log.warning("ledger: no opening balances of %s: %s", venue, exc.details())
            return []
        log.info("ledger: %s's balances: %s (%s)", venue, exc.code().name, exc.details())
        return None
    except NotFound as exc:  # no longer in the mesh
        log.warning("ledger: no opening balances of %s: %s", venue, exc)
        return []


def _amount(balance: tf.Balance) -> Decimal:
    try:
        return Decimal(balance.total or "0")
    except InvalidOperation:
        return Decimal(0)
