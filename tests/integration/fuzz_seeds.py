"""Requests a caller who knows the mesh would send, one or a few per method that does work
(places, decides, creates, registers): the fuzz sends them as they are, with one field changed
to another good value, or with one field made bad (tests.integration.fuzz_support). Drawn field
by field, such a request almost never meets every check at once (a market order with no price,
a stop on the right side of the entry, a backtest with a strategy and a range), so the work
behind the checks would go untried.

Keyed by the request's full message name; each serialised (the fuzz parses them with the
message classes it got from reflection).
"""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from tests.integration.fuzz_pools import NESTED_TOML
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as adv
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.common.v1 import common_pb2 as common
from trademesh.ledger.v1 import ledger_pb2 as ledger
from trademesh.livedata.v1 import livedata_pb2 as live
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.patch.v1 import patch_pb2 as pp
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["MADE_PATCHES", "policy_files", "probes", "seeds", "strategy_files"]

_STRATEGY = Path("trademesh/core/detector/strategies/trend.toml")
_POLICIES = Path("trademesh/core/inspector/default_policies.toml")
_SYMBOL = "BTC/USDT"
# The markets Overwatch's board holds in the fuzz mesh (tests.integration.fuzz_mesh).
_MARKETS = ow.MarketFilter(venues=["sim"], symbols=[_SYMBOL, "ETH/USDT"])
_SIZE = "0.001"
_VENUE_SERVICES = (
    "trademesh.marketdata.v1.MarketData",
    "trademesh.tradeflow.v1.TradeFlow",
    "trademesh.admin.v1.Admin",
)


def seeds(
    price: Decimal, patch: pp.PatchGraph, strategy: str, made: Sequence[str], proposal: str
) -> dict[str, list[bytes]]:
    """The seeds, around the sim's BTC/USDT at `price`, for `patch` (a real one) and `strategy`;
    `made`: the patches the fuzz's strategy files make, each activated by a seed; `proposal`: the
    Supervisor's open proposal, approved and rejected."""
    found: list[Message] = [
        *_orders(price),
        *_intents(price, strategy),
        md.SubscribeRequest(symbols=[_SYMBOL, "ETH/USDT"], channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK]),
        admin.AddSubscriptionsRequest(
            subscriptions=[admin.Subscription(symbol=_SYMBOL, channel=md.CHANNEL_TRADES)]
        ),
        admin.HeartbeatRequest(ttl_ms=5_000),
        _decide(strategy),
        _backtest(strategy),
        reg.RegisterRequest(
            name="fuzz-venue", kind=reg.KIND_VENUE, address="127.0.0.1:9", services=_VENUE_SERVICES
        ),
        pp.CreatePatchRequest(
            patch_id="fuzz-made", name="fuzz", markets=[pp.Market(venue="sim", symbol=_SYMBOL)]
        ),
        *_patch_edits(patch),
        *(pp.CreatePatchRequest(strategy_toml=text) for text in strategy_files(broken=False)),
        *(pp.ActivatePatchRequest(patch_id=patch_id) for patch_id in made),
        ow.GetBoardRequest(filter=_MARKETS),
        ow.StreamRegimesRequest(filter=_MARKETS),
        sv.ApproveRequest(proposal_id=proposal),
        sv.RejectRequest(proposal_id=proposal, reason="fuzz: not now"),
    ]
    by_type: dict[str, list[bytes]] = {}
    for message in found:
        by_type.setdefault(message.DESCRIPTOR.full_name, []).append(message.SerializeToString())
    return by_type


def _at(price: Decimal, share: str) -> str:
    return str((price * Decimal(share)).quantize(Decimal("0.01")))


def _orders(price: Decimal) -> list[Message]:
    buy, sell = common.SIDE_BUY, common.SIDE_SELL
    return [
        tf.PlaceOrderRequest(
            symbol=_SYMBOL, side=buy, type=tf.ORDER_TYPE_MARKET, size=_SIZE,
            time_in_force=tf.TIME_IN_FORCE_IOC,
        ),
        tf.PlaceOrderRequest(
            symbol=_SYMBOL, side=buy, type=tf.ORDER_TYPE_LIMIT, size=_SIZE, price=_at(price, "0.9"),
            time_in_force=tf.TIME_IN_FORCE_GTC, client_order_id="fuzz-limit",
        ),
        tf.PlaceOrderRequest(
            symbol=_SYMBOL, side=sell, type=tf.ORDER_TYPE_STOP_MARKET, size=_SIZE,
            trigger_price=_at(price, "0.8"), time_in_force=tf.TIME_IN_FORCE_GTC, reduce_only=True,
        ),
        # The limit order above amended: its price, its size, and renamed.
        tf.AmendOrderRequest(client_order_id="fuzz-limit", price=_at(price, "0.89")),
        tf.AmendOrderRequest(client_order_id="fuzz-limit", size="0.002", reason="fuzz: resized"),
        tf.AmendOrderRequest(client_order_id="fuzz-limit", new_client_order_id="fuzz-limit-2"),
    ]  # fmt: skip


def _intents(price: Decimal, strategy: str) -> list[Message]:
    now = time.time_ns()
    market = am.Intent(
        intent_id="fuzz-intent-1", venue="sim", symbol=_SYMBOL, side=common.SIDE_BUY, size=_SIZE,
        entry_type=tf.ORDER_TYPE_MARKET, stop_loss=_at(price, "0.99"), take_profit=_at(price, "1.01"),
        conviction="0.8", strategy_id=strategy, ts_intent_ns=now, ts_signal_ns=now,
    )  # fmt: skip
    limit = am.Intent(
        intent_id="fuzz-intent-2", venue="sim", symbol=_SYMBOL, side=common.SIDE_SELL, size=_SIZE,
        entry_type=tf.ORDER_TYPE_LIMIT, entry_price=_at(price, "1.05"), stop_loss=_at(price, "1.06"),
        take_profit=_at(price, "0.95"), time_in_force=tf.TIME_IN_FORCE_GTC, conviction="0.6",
        strategy_id=strategy, ts_intent_ns=now,
    )  # fmt: skip
    return [rk.SubmitIntentRequest(intent=market), rk.SubmitIntentRequest(intent=limit)]


def _decide(strategy: str) -> Message:
    now = time.time_ns()
    signal = sig.Signal(
        signal_id="fuzz-signal", venue="sim", symbol=_SYMBOL, direction=sig.DIRECTION_LONG, conviction="0.8",
        score="3", threshold="3", strategy_id=strategy, ts_event_ns=now, ts_signal_ns=now,
    )  # fmt: skip
    return adv.DecideRequest(signal=signal)


def _backtest(strategy: str) -> Message:
    now = time.time_ns()
    options = bt.BacktestOptions(
        strategies=[strategy], venue="sim", symbols=[_SYMBOL], start_ns=now - 600 * 10**9,
        end_ns=now - 300 * 10**9, timeframe="1s",
    )  # fmt: skip
    return bt.StartBacktestRequest(options=options)


def _patch_edits(patch: pp.PatchGraph) -> list[Message]:
    """Edits of a real patch: a module added, its markets set to what they are, one of its cables
    connected again and cut, one of its modules' params set to what they are."""
    found: list[Message] = [
        pp.AddModuleRequest(patch_id=patch.patch_id, module_id="fuzz_ema", type="ema"),
        pp.UpdatePatchRequest(patch_id=patch.patch_id, markets=list(patch.markets)),
    ]
    if patch.cables:
        cable = patch.cables[0]
        found += [
            pp.ConnectCableRequest(patch_id=patch.patch_id, cable=cable),
            pp.DisconnectCableRequest(patch_id=patch.patch_id, cable=cable),
        ]
    with_params = [m for m in patch.modules if m.params]
    if with_params:
        module = with_params[0]
        found.append(
            pp.SetParamsRequest(patch_id=patch.patch_id, module_id=module.module_id, params=module.params)
        )
    return found


def probes(price: Decimal, strategy: str) -> dict[str, list[tuple[str, Message]]]:
    """Good requests per service and the methods they go to, which must answer OK after the fuzz
    as before it: a service the fuzz broke for everyone (a store wedged by one bad row) fails
    them; so does one refusing what a good caller sends (the shipped policy set, a shipped
    strategy file: no field limit may refuse them)."""
    fresh = uuid.uuid4().hex
    intent = _intents(price, strategy)[0]
    assert isinstance(intent, rk.SubmitIntentRequest)
    intent.intent.intent_id = f"probe-{fresh}"
    decide = _decide(strategy)
    assert isinstance(decide, adv.DecideRequest)
    decide.signal.signal_id = f"probe-{fresh}"
    patch = pp.CreatePatchRequest(
        patch_id=f"probe-{fresh}", name="probe", markets=[pp.Market(venue="sim", symbol=_SYMBOL)]
    )
    shipped = _STRATEGY.read_text().replace('id = "trend"', f'id = "probe-{fresh}"', 1)
    policies = rk.UpdatePoliciesRequest(toml=_POLICIES.read_text(), reason="the shipped set")
    health = ("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest())
    return {
        "venue": [("/trademesh.marketdata.v1.MarketData/ListInstruments", md.ListInstrumentsRequest())],
        "bridge": [("/trademesh.livedata.v1.LiveData/ListStreams", live.ListStreamsRequest())],
        "ingest": [health],
        "recorder": [health],
        "advisor": [("/trademesh.advisor.v1.Advisor/Decide", decide)],
        "detector": [
            ("/trademesh.patch.v1.Patch/CreatePatch", patch),
            ("/trademesh.patch.v1.Patch/CreatePatch", pp.CreatePatchRequest(strategy_toml=shipped)),
        ],
        "inspector": [
            ("/trademesh.risk.v1.Inspector/SubmitIntent", intent),
            ("/trademesh.risk.v1.Inspector/UpdatePolicies", policies),
        ],
        "ledger": [("/trademesh.ledger.v1.Ledger/GetPnl", ledger.GetPnlRequest())],
        "backtester": [("/trademesh.backtest.v1.Backtest/ListRuns", bt.ListRunsRequest())],
        "overwatch": [("/trademesh.overwatch.v1.Overwatch/GetBoard", ow.GetBoardRequest(filter=_MARKETS))],
        "supervisor": [
            ("/trademesh.supervisor.v1.Supervisor/GetState", sv.GetStateRequest()),
            ("/trademesh.supervisor.v1.Supervisor/SetMode", sv.SetModeRequest(mode=sv.MODE_PROPOSE)),
        ],
        "telegram": [health],  # no RPC of its own: it answers Telegram (test_fuzz.py feeds it)
        "registry": [("/trademesh.registry.v1.Registry/ListServices", reg.ListServicesRequest())],
    }


# Strategy files made from the shipped trend.toml: a good one, and each made bad one way (a
# symbol the sim does not list, a venue nobody serves, a NUL in its id or text, many unknown
# symbols). Their patches are "<id>/<venue>/<symbol>" (MADE_PATCHES: activated by the seeds).
MADE_PATCHES = (
    "fuzz-good/sim/BTC/USDT", "fuzz-good/sim/ETH/USDT", "fuzz-doge/sim/DOGE/USDT", "fuzz-doge/sim/BTC/USDT",
    "fuzz-cold/sim/DOGE/USDT", "fuzz-nope/nope/BTC/USDT", "fuzz-text/sim/BTC/USDT", "fuzz-many/sim/X0/USDT",
    "fuzz-many/sim/X39/USDT",
)  # fmt: skip


def strategy_files(broken: bool = True) -> list[str]:
    """The strategy files (MADE_PATCHES's), and with `broken` some that are not TOML at all or
    nest thousands deep."""
    text = _STRATEGY.read_text()

    def made(strategy: str, venues: str = '["sim"]', symbols: str = '["BTC/USDT", "ETH/USDT"]') -> str:
        found = text.replace('id = "trend"', f'id = "{strategy}"', 1)
        found = found.replace('venues = ["sim"]', f"venues = {venues}", 1)
        return found.replace('symbols = ["BTC/USDT", "ETH/USDT"]', f"symbols = {symbols}", 1)

    many = "[" + ", ".join(f'"X{i}/USDT"' for i in range(40)) + "]"
    made_ones = [
        made("fuzz-good"),
        made("fuzz-doge", symbols='["DOGE/USDT"]'),
        made("fuzz-doge", symbols='["BTC/USDT", "DOGE/USDT"]'),
        # No warm-up: nothing stops its activation before its market is followed.
        made("fuzz-cold", symbols='["DOGE/USDT"]').replace("warmup = 30", "warmup = 0", 1),
        made("fuzz-nope", venues='["nope"]'),
        made("fuzz\\u0000nul"),
        made("fuzz-text").replace('description = "', 'description = "a\\u0000', 1),
        made("fuzz-many", symbols=many),
    ]
    return made_ones + (["", "[[[", text.replace("=", "\x00", 3), *NESTED_TOML] if broken else [])


def policy_files() -> list[str]:
    """The shipped policy set, and sets made bad (empty, a limit switched to 1e30, NUL, huge, not
    TOML, nested thousands deep)."""
    shipped = _POLICIES.read_text()
    return [
        shipped,
        "",
        textwrap.dedent("""\
            [position]
            max_notional = "1e30"
            """),
        shipped.replace("=", "= \x00", 1),
        "x = 'NaN'\n" * 2000,
        "[[[",
        *NESTED_TOML,
    ]
