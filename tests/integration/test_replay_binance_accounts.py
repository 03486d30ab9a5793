"""Two accounts at Binance (docs/accounts.md): `trademesh venue binance --account desk-a` and
`--account desk-b`, each a process of its own against the replay stand-in, which tells accounts
apart by their API keys alone (trademesh/venues/binance/standin/order_store.py, ACCOUNT_BALANCES). Both
processes are given every account's credentials, and the plain venue's: each signs with its own
account's key (it sees that account's balances), places an order as that account, and names
itself by the account."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import IO

import pytest

from tests.integration.replay import capture_files
from tests.integration.support import CALL_TIMEOUT_S, VENUE_ENV, Venue, limit_order, stop_venue
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.binance.standin.order_store import ACCOUNT_BALANCES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = capture_files("BINANCE")
# Every account's credentials in every process, as one operator's shell would hold them.
CREDENTIALS = {
    "TRADEMESH_BINANCE_API_KEY": "the-plain-venues-key",
    "TRADEMESH_BINANCE_API_SECRET": "the-plain-venues-secret",
    "TRADEMESH_BINANCE__DESK_A_API_KEY": "standin-desk-a",
    "TRADEMESH_BINANCE__DESK_A_API_SECRET": "desk-a-secret-31c",
    "TRADEMESH_BINANCE__DESK_B_API_KEY": "standin-desk-b",
    "TRADEMESH_BINANCE__DESK_B_API_SECRET": "desk-b-secret-8e2",
}


def _start(directory: Path, account: str) -> tuple[Venue, IO[str]]:
    args = ["venue", "binance", "--account", account, "--port", "0", "--metrics-port", "-1"]
    log_path = directory / f"binance-{account}.log"
    log_file = log_path.open("w")
    args += ["--replay", *map(str, FILES)]
    service = start_service(args, env={**VENUE_ENV, **CREDENTIALS}, stderr=log_file, timeout_s=60)
    return Venue(service, log_path), log_file


def _expected(key: str) -> dict[str, Decimal]:
    return {b["asset"]: Decimal(b["free"]) for b in ACCOUNT_BALANCES[key]}


async def test_each_binance_account_signs_with_its_own_key_and_sees_its_own_balances(tmp_path: Path) -> None:
    started = await asyncio.gather(
        asyncio.to_thread(_start, tmp_path, "desk-a"), asyncio.to_thread(_start, tmp_path, "desk-b")
    )
    try:
        for (venue, _), account, key in zip(
            started, ("desk-a", "desk-b"), ("standin-desk-a", "standin-desk-b"), strict=True
        ):
            stubs = venue.stubs()
            answer = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
            assert {b.asset: Decimal(b.free) for b in answer.balances} == _expected(key), account
            status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
            assert (status.venue, status.exchange, status.account) == (
                f"binance.{account}",
                "binance",
                account,
            )
            listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
            assert {i.venue for i in listed.instruments} == {f"binance.{account}"}
            # An order as the account: the venue's order carries the account's venue name.
            order = limit_order("NKN/USDT", common.SIDE_BUY, "100", "0.3", client_order_id=f"tm-{account}")
            placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
            assert placed.order.status == tf.ORDER_STATUS_OPEN
            assert placed.order.venue == f"binance.{account}"
        desk_a = started[0][0].stubs()
        mine = await desk_a.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        assert [o.client_order_id for o in mine.orders] == ["tm-desk-a"]
        for venue, _ in started:  # no account's secret in its log
            text = venue.log_path.read_text(errors="replace")
            assert not any(secret in text for secret in CREDENTIALS.values())
    finally:
        for venue, log_file in started:
            await stop_venue(venue, log_file)
