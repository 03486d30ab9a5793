"""ListFundingPayments on real venue processes: the sim's scheduled funding of a perpetual, the
replay stand-ins' funding history through ccxt (Binance USD-M's /fapi/v1/income, OKX's bills)
with the rate of each funding time from the venue's public rate history (/fapi/v1/fundingRate,
/public/funding-rate-history), an empty list on spot, and bad requests refused naming their
fields.

The stand-ins' payments are the fixed ones their modules document
(trademesh/venues/binanceusdm/standin/funding.py, trademesh/venues/okx_swap/standin/funding.py), written out
here by hand.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.integration.replay import capture_files, running_replay_venue
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    Stubs,
    Venue,
    VenueFactory,
    balances,
    until,
)
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

D = Decimal
S = 1_000_000_000
PERP = "BTC/USDT:USDT"
INTERVAL_S = 2
RATE = D("0.0003")
# Makers of 5 contracts an order: at the default 0.2 the book held under the 0.5 sold 1 step in 30,000.
SIM_CONFIG = f"""
taker_fee_rate = "0.001"
[balances]
USDT = "100000"
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
[[symbols]]
symbol = "{PERP}"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
maker_size_lots = 5000
funding_rate = "{RATE}"
funding_interval_s = {INTERVAL_S}
"""


async def payments(stubs: Stubs, **fields: object) -> list[tf.FundingPayment]:
    request = tf.ListFundingPaymentsRequest(**fields)  # type: ignore[arg-type]
    answer = await stubs.tf.ListFundingPayments(request, timeout=CALL_TIMEOUT_S)
    return list(answer.payments)


def rows(found: list[tf.FundingPayment]) -> list[tuple[str, str, str, str, str, str, int]]:
    return [(p.funding_id, p.symbol, p.asset, p.amount, p.rate, p.position_size, p.ts_ns) for p in found]


# ---- the sim


@pytest.fixture
async def perp_sim(fresh_venue: VenueFactory) -> AsyncIterator[Stubs]:
    stubs = fresh_venue(SIM_CONFIG, "perp").stubs()
    yield stubs
    await stubs.close()


async def test_the_sims_perpetual_pays_funding_on_its_schedule(perp_sim: Stubs) -> None:
    stubs = perp_sim
    placed = await stubs.tf.PlaceOrder(
        tf.PlaceOrderRequest(symbol=PERP, side=common.SIDE_SELL, type=tf.ORDER_TYPE_MARKET, size="0.5"),
        timeout=CALL_TIMEOUT_S,
    )
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    after_fill = D((await balances(stubs))["USDT"].free)
    assert D((await balances(stubs))["BTC"].total) == 0, "a perpetual moves no BTC"
    [position] = (await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol=PERP))).positions
    assert D(position.size) == D("-0.5"), "a short opened from flat"

    async def two_payments() -> list[tf.FundingPayment] | None:
        found = await payments(stubs, symbol=PERP)
        return found if len(found) >= 2 else None

    found = await until(two_payments, timeout_s=4 * INTERVAL_S + 5, what="two funding payments")
    entry = D(placed.order.average_fill_price)
    for payment in found:
        assert (payment.symbol, payment.asset, D(payment.rate), D(payment.position_size)) == (
            PERP,
            "USDT",
            RATE,
            D("-0.5"),
        )
        assert payment.ts_ns % (INTERVAL_S * S) == 0, "funding times are multiples of the interval"
        assert payment.funding_id == f"BTCUSDT-PERP-{payment.ts_ns // 1_000_000}"
        # A short receives when the rate is positive: amount = 0.5 * mark * rate, the mark near
        # the price the short was sold at.
        mark = D(payment.amount) / (D("0.5") * RATE)
        assert entry * D("0.9") < mark < entry * D("1.1"), (payment.amount, entry)
    assert found[1].ts_ns - found[0].ts_ns == INTERVAL_S * S
    assert len({p.funding_id for p in found}) == len(found)

    # The payments are what moved the balance since the fill (no other order trades): read
    # between two reads of the balance that agree (no payment came in between).
    async def still() -> tuple[Decimal, Decimal] | None:
        before = D((await balances(stubs))["USDT"].free)
        listed = await payments(stubs)
        again = D((await balances(stubs))["USDT"].free)
        return (again, sum((D(p.amount) for p in listed), D(0))) if before == again else None

    balance, paid = await until(still, 30, what="the balance holding still between two reads")
    assert balance == after_fill + paid

    later = await payments(stubs, since_ns=found[1].ts_ns, limit=1)
    assert rows(later) == rows(found[1:2])
    assert await payments(stubs, symbol="BTC/USDT") == [], "a spot symbol has no funding"


async def test_the_mesh_token_may_list_funding_payments(fresh_venue: VenueFactory) -> None:
    venue: Venue = fresh_venue(SIM_CONFIG, "perp-mesh-token")
    mesh = venue.stubs(token=TEST_TOKEN)
    try:
        assert await payments(mesh) == []
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await mesh.tf.PlaceOrder(
                tf.PlaceOrderRequest(symbol=PERP, side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="1"),
                timeout=CALL_TIMEOUT_S,
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, "only the reads are the mesh's"
    finally:
        await mesh.close()


async def test_a_spot_venue_has_no_funding_payments(stubs: Stubs) -> None:
    assert await payments(stubs) == []
    assert await payments(stubs, symbol="BTC/USDT", limit=1000) == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"since_ns": -1}, {"since_ns"}),
        ({"since_ns": time.time_ns() + 3600 * S}, {"since_ns"}),
        ({"limit": 1001}, {"limit"}),
        ({"limit": -1}, {"limit"}),
        ({"symbol": "DOGE/USDT"}, {"symbol"}),
        ({"symbol": "BTCUSDT", "since_ns": -5, "limit": 5000}, {"symbol", "since_ns", "limit"}),
    ],
)
async def test_bad_requests_are_refused_naming_their_fields(
    stubs: Stubs, fields: dict[str, object], named: set[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await payments(stubs, **fields)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request_violations(error.value)
    assert {field for field, _ in violations} == named, violations
    assert all(description for _, description in violations)


# ---- the live perpetual venues, against their stand-ins

# The rate is the rate history's at the payment's funding time: Binance's fundingRate (BTCUSDT's
# of 08:00 stamped 3 ms past it), OKX's realizedRate (ETH's of 16:00 settled below the rate set,
# 0.000375).
BINANCE = [  # tranId, symbol, income, time (ms), rate
    ("9689322392", "SUSHI/USDT:USDT", "-0.012345", 1739923200000, "-0.00037019"),
    ("9689322393", "BTC/USDT:USDT", "0.521", 1739923200000, "0.00006112"),
    ("9689410017", "SUSHI/USDT:USDT", "0.00412", 1739952000000, "0.00012406"),
    ("9689410018", "BTC/USDT:USDT", "-1.0475", 1739952000000, "0.0001"),
    ("9689498741", "SUSHI/USDT:USDT", "-0.000891", 1739980800000, "-0.0000465"),
]
OKX = [  # billId, symbol, balChg, ts (ms), rate
    ("2189532170416541696", "BTC/USDT:USDT", "-0.2851", 1739923200000, "0.000031297654286"),
    ("2189532170416541697", "ETH/USDT:USDT", "0.0712", 1739923200000, "-0.0000583322017546"),
    ("2189652967823974400", "BTC/USDT:USDT", "0.1127", 1739952000000, "-0.0000126470933285"),
    ("2189773765231407104", "BTC/USDT:USDT", "-0.3904", 1739980800000, "0.0001127551308204"),
    ("2189773765231407105", "ETH/USDT:USDT", "-0.0338", 1739980800000, "0.0003"),
]
STANDINS = {
    "binanceusdm": (
        "BINANCE_FUTURES",
        {"TRADEMESH_BINANCEUSDM_API_KEY": "replay-key", "TRADEMESH_BINANCEUSDM_API_SECRET": "replay-secret"},
        BINANCE,
        "SUSHI/USDT:USDT",
    ),
    "okx-swap": (
        "OKX_SWAP",
        {
            "TRADEMESH_OKX_SWAP_API_KEY": "replay-key",
            "TRADEMESH_OKX_SWAP_API_SECRET": "replay-secret",
            "TRADEMESH_OKX_SWAP_PASSPHRASE": "replay-passphrase",
        },
        OKX,
        "BTC/USDT:USDT",
    ),
}


def expected(
    table: list[tuple[str, str, str, int, str]],
) -> list[tuple[str, str, str, str, str, str, int]]:
    """Rows as ListFundingPayments answers them: oldest first, with their rate, no position size."""
    ordered = sorted(table, key=lambda row: (row[3], row[0]))
    return [(i, symbol, "USDT", amount, rate, "", ms * 1_000_000) for i, symbol, amount, ms, rate in ordered]


@pytest.fixture(params=list(STANDINS))
async def standin(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Stubs]]:
    name = request.param
    prefix, env, _, _ = STANDINS[name]
    request.node.add_marker(pytest.mark.replay(env=env))
    async with running_replay_venue(tmp_path, request, name, capture_files(prefix)) as venue:
        yield name, venue.stubs()


@pytest.mark.slow
async def test_the_perpetual_venues_list_their_funding_history(standin: tuple[str, Stubs]) -> None:
    name, stubs = standin
    _, _, table, streamed = STANDINS[name]
    assert rows(await payments(stubs)) == expected(table)
    mine = [row for row in table if row[1] == streamed]
    assert rows(await payments(stubs, symbol=streamed)) == expected(mine)
    second_time = 1739952000000 * 1_000_000
    assert rows(await payments(stubs, since_ns=second_time)) == expected(
        [r for r in table if r[3] >= 1739952000000]
    )
    assert rows(await payments(stubs, limit=2)) == expected(table)[:2]
