"""A chaos run (docs/chaos.md): the mesh of chaos_mesh.py trading while its chain's services are
killed (kill -9) and the inspector frozen past the dead-man's ttl, then the venue's own history
read for what the issue 37 invariants say. The chaos test (tests/integration/test_chaos.py)
runs a short one and asserts; the chaos bench (bench/chaos.py) a long one and prints.

Everything random comes from the seed: the order of the kills and their victims, the times,
and the intents the run submits. The seed does not make the run repeat exactly (the mesh's
timing is the machine's), but a failing seed replays the same plan.

The trading: the demo chain trades as `up` runs it (the advisor with the tests' validation,
as the other mesh tests run it, so the sim's small moves give intents), and the run submits
manual intents of its own through the inspector's SubmitIntent: market buys on BTC/USDT and
ETH/USDT (spot: the ledger books no short), stops 0.02-0.1 % away (a position's pair follows
its latest entry's levels, so positions close within seconds to a minute and the default
policies' caps free up), each sent again with the same intent id until answered however the
inspector dies meanwhile. One of them, the anchor, holds
a SOL/USDT position (no demo strategy trades it) with its pair 3 % and 6 % away for the whole
run, so a position is protected whenever the inspector freezes. A stand-down (the loss streak:
the sim's fees) is resumed, as an operator keeping a chaos run trading would.

The leveraged run (`ChaosConfig.leveraged`, the chaos test's): the sim also lists a linear
perpetual, BTC/USDT:USDT, isolated margin, its market falling (`drift_per_s`) so that a long held
at 20x comes to its liquidation price about 16 s after its entry. The run opens a long there at
once and sends its own intents there too (`Intent.leverage` 20, the pair 8 % away: beyond the
liquidation price, so the venue liquidates what the market takes there first), so kills and
freezes come while leveraged positions near their liquidation; the venue's margin figures are
sampled meanwhile, and after the run each liquidation is matched to the ledger's books and the
inspector's risk event.

At the end the chain stops, every order left is cancelled, the perpetual's position closed (a
liquidation after the run's end would be a fill the run never read), a probe order marks the end
of the venue's executions, and the ledger is given until it has booked every fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import asyncpg
import grpc

from tests.chaos_history import Absence, Entries, History, Window, entries, history, states
from tests.integration.chaos_mesh import ChaosMesh, Kill, VenueWatch, chaos_mesh
from tests.integration.mesh import ADVISOR_TEST_CONFIG, WARM_HISTORY_S, stream_entries
from tests.integration.support import CALL_TIMEOUT_S, TEST_BOOK_UPDATES_PER_S, TEST_TOKEN, with_test_step
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import INTENTS, RISK, journal_stream
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["PERP", "VICTIMS", "ChaosConfig", "ChaosReport", "LedgerCheck", "Leveraged", "plan", "run_chaos"]

S = 1_000_000_000
VICTIMS = ("detector", "advisor", "inspector", "ledger")  # the chain's services and the books
TRADED = {"BTC/USDT": Decimal("0.02"), "ETH/USDT": Decimal("0.4")}  # about 1,300 USDT an entry
ANCHOR = ("SOL/USDT", Decimal("20"), Decimal("0.03"), Decimal("0.06"))  # symbol, size, stop, target
# The leveraged run's perpetual: an entry (about 1,300 USDT at the start), its pair beyond the
# liquidation price (at 20x isolated about 4.6 % under a long's entry), and the leverage.
PERP = "BTC/USDT:USDT"
PERP_ENTRY = (PERP, Decimal("0.02"), Decimal("0.08"), Decimal("0.08"))
LEVERAGE = "20"
LIQUIDATING = "canceled: the position is being liquidated"  # the sim's reason (matching/exchange.py)
MARGIN_EVERY_S = 0.5  # the venue's margin figures sampled
# Near its liquidation: the mark within this fraction of the liquidation price (a 20x long's
# liquidation is about 4.6 % under its entry: more than half of the way there).
NEAR = Decimal("0.02")
NEAR_WITHIN_S = 40.0  # the freeze waits this long for a leveraged position near its liquidation
SUBMIT_WITHIN_S = 120.0  # an intent is answered within this, however often the inspector dies
LEDGER_WITHIN_S = 60.0
EXECUTIONS, RUN = "executions.pb", "run.json"  # kept in the run's directory
JOURNAL = "journal.bin"  # the inspector's journal: each entry's length (4 bytes, big-endian), then it
_MESH_AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    duration_s: float = 45.0  # the chaos: kills, freezes and intents
    kills: int = 5
    freezes: int = 1
    freeze_s: float = 14.0  # past the inspector's dead-man ttl (10 s) and its heartbeat (a third of it)
    settle_s: float = 4.0  # after the last fault, the mesh undisturbed before the run ends
    bound_s: float = 1.0  # a position may be without its pair this long
    intent_every_s: float = 2.5  # the run's own intents; 0: none (the demo's alone, and the anchor)
    victims: tuple[str, ...] = VICTIMS
    leveraged: bool = False  # a perpetual traded at 20x beside the spot symbols, its market falling

    @property
    def drift_per_s(self) -> float:
        """The perpetual's trend: -0.3 % a second (a 20x long liquidated about 16 s after its
        entry), gentler for a long run so the price falls no more than about 40 % in all (the
        sim runs some 120 s before and after the chaos)."""
        return -min(0.003, 0.5 / (self.duration_s + 120))

    def __post_init__(self) -> None:
        if self.duration_s <= self.freeze_s * self.freezes:
            room = f"{self.freezes} freezes of {self.freeze_s:g} s"
            raise ValueError(f"a run of {self.duration_s:g} s has no room for {room}")
        if not 0 <= self.intent_every_s < math.inf:
            raise ValueError(f"intents every {self.intent_every_s} s: give 0 (none) or a number above it")
        unknown = set(self.victims) - set(VICTIMS)
        if unknown or not self.victims:
            raise ValueError(f"victims must be some of {', '.join(VICTIMS)}, not {sorted(unknown) or 'none'}")


def plan(config: ChaosConfig) -> list[tuple[str, str]]:
    """The run's faults in order: ("kill", service) and ("freeze", "inspector"); at least one
    kill of the inspector when it is a victim."""
    rng = random.Random(config.seed)
    kills = [rng.choice(config.victims) for _ in range(config.kills)]
    if kills and "inspector" in config.victims and "inspector" not in kills:
        kills[rng.randrange(len(kills))] = "inspector"
    events = [("kill", service) for service in kills] + [("freeze", "inspector")] * config.freezes
    rng.shuffle(events)
    return events


@dataclass
class LedgerCheck:
    missing: list[str]  # venue fill ids the books never had
    unknown: list[str]  # fill events in the books the venue never made
    unequal: list[str]  # fills whose cash movements differ from the venue's (one line each)
    balances: dict[str, tuple[Decimal, Decimal]]  # asset -> (ledger, venue) where they differ
    verify_ok: bool
    verify_problems: list[str]
    # The ledger's PnL per strategy: (realised, fees as they affect PnL, fills); the fees and PnL
    # the demo's strategies made apart from the run's own intents (strategy "chaos").
    by_strategy: dict[str, tuple[Decimal, Decimal, int]]
    # asset -> (the books' margin held, the venue's position margin) where they differ
    margins: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """A leveraged position as the venue reported it (GetPositions), at ts_ns."""

    ts_ns: int
    symbol: str
    size: Decimal
    margin_ratio: Decimal
    liquidation_price: Decimal
    mark: Decimal

    @property
    def distance(self) -> Decimal:
        """How far the mark is from the liquidation price, as a fraction of the mark."""
        return abs(self.mark - self.liquidation_price) / self.mark if self.mark else Decimal(1)


@dataclass
class Leveraged:
    """The leveraged run's record: the venue's liquidations (their fills), the inspector's
    liquidation risk events (policy liquidation.venue: symbol, reason), the windows the venue's
    liquidation opened (its cancels of a position's orders, the position closed in the same
    step: not counted against the bound), and the venue's margin figures sampled."""

    liquidations: list[tf.Fill]
    events: list[tuple[str, str]]
    windows: list[Window]
    samples: list[Sample]
    reductions: int = 0  # the inspector's RISK_ACTION_REDUCE events (liquidation.min_distance_open)

    def near_in(self, spans: list[tuple[int, int]]) -> list[Sample]:
        """The samples of a position near its liquidation (within NEAR of it) in the spans."""
        return [s for s in self.samples if s.distance <= NEAR and any(a <= s.ts_ns <= b for a, b in spans)]

    def unrecorded(self) -> list[str]:
        """The venue's liquidations the inspector recorded no risk event of (per symbol, by count:
        the event says the symbol, size and price, in the inspector's own text)."""
        counts = Counter(f.symbol for f in self.liquidations)
        events = Counter(symbol for symbol, _ in set(self.events))
        return [f"{s}: {n} liquidated, {events[s]} events" for s, n in counts.items() if events[s] < n]


@dataclass
class ChaosReport:
    config: ChaosConfig
    start_ns: int
    end_ns: int
    kills: list[Kill]
    freezes: list[Absence]
    trips: list[int]  # the venue's dead-man trips (ns)
    protected_at_freeze: list[list[str]]  # per freeze, the symbols whose positions had their pair
    history: History
    entries: Entries
    intents: int  # known intents: the run's and the advisor's
    answers: Counter[str]  # the run's intents by the inspector's answer (and the policies refusing)
    resumed: Counter[str]  # stand-downs the run resumed, by the inspector's reason
    fills: int
    fees: dict[str, Decimal]
    realised: Decimal  # the venue's realised PnL over its positions (quote), before fees
    ledger: LedgerCheck
    gaps: list[str] = field(default_factory=list)
    leveraged: Leveraged | None = None

    @property
    def bound_ns(self) -> int:
        return int(self.config.bound_s * S)

    def inspector_trips(self) -> list[int]:
        """The venue's trips during a freeze of the inspector."""
        return [t for t in self.trips if any(f.start_ns <= t <= f.end_ns for f in self.freezes)]

    def faults(self) -> list[tuple[int, int]]:
        """When a fault was on: each kill until its service served again, each freeze."""
        return [(k.start_ns, k.end_ns) for k in self.kills] + [(f.start_ns, f.end_ns) for f in self.freezes]

    def broken(self) -> list[str]:
        """The invariants this run broke, by name (empty: none)."""
        ledger = self.ledger
        leveraged = self.leveraged
        checks = {
            "liquidations unrecorded": bool(leveraged and leveraged.unrecorded()),
            "the ledger's margin": bool(ledger.margins),
            "protection past the bound": bool(self.history.violations(self.bound_ns)),
            "protection stripped": any(w.stripped for w in self.history.pair),
            "double entries": bool(self.entries.doubles),
            "entries without an intent": bool(self.entries.unattributed),
            "the ledger's fills": bool(
                ledger.missing or ledger.unknown or ledger.unequal or not ledger.verify_ok
            ),
            "the ledger's balances": bool(ledger.balances),
        }
        return [name for name, broke in checks.items() if broke]

    def lines(self) -> list[str]:
        return _report_lines(self)

    def summary(self) -> dict[str, object]:
        """The figures, JSON-ready (the bench's result file)."""

        def windows(found: list[Window]) -> dict[str, object]:
            counted = [w.counted_ns / S for w in found]
            over = [c for c in counted if c > self.config.bound_s]
            return {"count": len(found), "past_bound": len(over), "max_s": max(counted, default=0.0),
                    "total_s": sum(counted)}  # fmt: skip

        ledger = self.ledger
        books = {
            "missing": len(ledger.missing),
            "unknown": len(ledger.unknown),
            "unequal": len(ledger.unequal),
            "balances_differing": {k: [str(a), str(b)] for k, (a, b) in ledger.balances.items()},
            "verify_ok": ledger.verify_ok,
            "pnl_by_strategy": {
                k: {"realised": str(v[0]), "fees": str(v[1]), "fills": v[2]}
                for k, v in ledger.by_strategy.items()
            },
        }
        return {
            "seed": self.config.seed,
            "config": dataclasses.asdict(self.config),
            "chaos_s": (self.end_ns - self.start_ns) / S,
            "kills": [{"service": k.service, "back_s": (k.end_ns - k.start_ns) / S} for k in self.kills],
            "freezes_s": [(f.end_ns - f.start_ns) / S for f in self.freezes],
            "deadman_trips": len(self.trips),
            "deadman_trips_in_freezes": len(self.inspector_trips()),
            "unprotected_pair": windows(self.history.pair),
            "unprotected_stop": windows(self.history.stop),
            "stripped": sum(w.stripped for w in self.history.pair),
            "dust_windows": len(self.history.dust),
            "intents_known": self.intents,
            "entries": sum(len(v) for v in self.entries.by_intent.values()),
            "double_entries": len(self.entries.doubles),
            "unattributed_entries": len(self.entries.unattributed),
            "run_intents": dict(self.answers),
            "stand_downs_resumed": dict(self.resumed),
            "fills": self.fills,
            "fees": {asset: str(fee) for asset, fee in self.fees.items()},
            "realised_before_fees": str(self.realised),
            "ledger": books,
            "execution_gaps": self.gaps,
            "leveraged": _leveraged_summary(self),
        }


def _leveraged_summary(r: ChaosReport) -> dict[str, object] | None:
    found = r.leveraged
    if found is None:
        return None
    return {
        "liquidations": [
            {"symbol": f.symbol, "size": f.size, "price": f.price, "fee": f.fee} for f in found.liquidations
        ],
        "liquidation_events": len(set(found.events)),
        "reductions": found.reductions,
        "unrecorded": found.unrecorded(),
        "liquidation_windows": len(found.windows),
        "margin_samples": len(found.samples),
        "near_liquidation_in_faults": len(found.near_in(r.faults())),
        "max_margin_ratio": str(max((s.margin_ratio for s in found.samples), default=Decimal(0))),
        "margin_differing": {k: [str(a), str(b)] for k, (a, b) in r.ledger.margins.items()},
    }


def _report_lines(r: ChaosReport) -> list[str]:
    ms = 1_000_000

    def windows(kind: str, found: list[Window]) -> str:
        counted = sorted(w.counted_ns for w in found)
        over = sum(c > r.bound_ns for c in counted)
        middle = counted[len(counted) // 2] / ms if counted else 0
        longest, total = max(counted, default=0) / S, sum(counted) / S
        return (
            f"{kind}: {len(found)} windows, {over} past {r.config.bound_s:g} s; "
            f"counted: median {middle:.0f} ms, max {longest:.2f} s, total {total:.2f} s"
        )

    lines = [
        f"seed {r.config.seed} (TRADEMESH_CHAOS_SEED={r.config.seed} replays the plan); "
        f"{(r.end_ns - r.start_ns) / S:.0f} s of chaos",
        "kills: " + ", ".join(f"{k.service} (back in {(k.end_ns - k.start_ns) / S:.1f} s)" for k in r.kills),
        "freezes: "
        + ", ".join(f"inspector {(f.end_ns - f.start_ns) / S:.1f} s" for f in r.freezes)
        + f"; venue dead-man trips {len(r.trips)}, {len(r.inspector_trips())} during a freeze",
        windows("unprotected (pair)", r.history.pair),
        windows("unprotected (stop)", r.history.stop),
        f"stripped while the inspector was away: {sum(w.stripped for w in r.history.pair)}; "
        f"dust windows (too small to protect): {len(r.history.dust)}",
    ]
    for w in r.history.violations(r.bound_ns):
        lines.append(
            f"  {w.symbol} +{(w.start_ns - r.start_ns) / S:.1f} s: {w.length_ns / ms:.0f} ms "
            f"(counted {w.counted_ns / ms:.0f} ms), cause {w.cause}"
            + (", stripped" if w.stripped else "")
            + (", open at the end" if w.open_at_end else "")
            + f", position up to {w.largest}"
        )
    placed, ledger = r.entries, r.ledger
    verified = "ok" if ledger.verify_ok else ledger.verify_problems
    lines += [
        f"entries: {sum(len(v) for v in placed.by_intent.values())} for {len(placed.by_intent)} intents of "
        f"{r.intents} known; double entries {len(placed.doubles)}; unattributed {len(placed.unattributed)}",
        f"run's intents: {dict(r.answers)}; stand-downs resumed {sum(r.resumed.values())} {dict(r.resumed)}",
        f"fills {r.fills}; fees {', '.join(f'{v} {k}' for k, v in r.fees.items()) or 0}; "
        f"realised PnL {r.realised} (before fees)",
        "the ledger's PnL by strategy (realised, fees, fills): "
        + "; ".join(f"{k} {v[0]:.2f}, {v[1]:.2f}, {v[2]}" for k, v in sorted(ledger.by_strategy.items())),
        f"ledger: missing {len(ledger.missing)}, unknown {len(ledger.unknown)}, "
        f"unequal {len(ledger.unequal)}, balances differing {len(ledger.balances)} "
        f"{ledger.balances or ''}, verify {verified}",
    ]
    if r.gaps:
        lines.append(f"execution stream gaps: {r.gaps}")
    found = r.leveraged
    if found is not None:
        near = found.near_in(r.faults())
        top = max((s.margin_ratio for s in found.samples), default=Decimal(0))
        lines += [
            f"leveraged: {len(found.liquidations)} liquidations "
            + ", ".join(f"{f.symbol} {f.size} at {f.price}" for f in found.liquidations)
            + f"; the inspector's liquidation events {len(set(found.events))}, "
            f"reductions near liquidation {found.reductions}; "
            f"windows the liquidations opened {len(found.windows)}",
            f"leveraged: {len(found.samples)} margin samples, margin ratio up to {top:.3f}; "
            f"{len(near)} samples within {NEAR:%} of the liquidation price during a fault; "
            f"the ledger's margin differing: {r.ledger.margins}",
        ]
    return lines


class Trader:
    """The run's manual intents, through the inspector (as Studio's order ticket sends them)."""

    def __init__(
        self, address: str, watch: VenueWatch, rng: random.Random, ticks: dict[str, Decimal], leveraged: bool
    ) -> None:
        self.leveraged = leveraged
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = rk_grpc.InspectorStub(self.channel)
        self.watch = watch
        self.rng = rng
        self.ticks = ticks
        self.intents: dict[str, str] = {}  # entry client order id -> intent id
        self.answers: Counter[str] = Counter()
        self.resumed: Counter[str] = Counter()
        self.pending: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self.channel.close()

    def submit_soon(
        self, symbol: str, side: common.Side.ValueType, size: Decimal, stop: Decimal, target: Decimal
    ) -> None:
        task = asyncio.create_task(self.submit(symbol, side, size, stop, target))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def random_intent(self) -> None:
        """A buy: the sim is spot, where the ledger books no short (docs/ledger.md, "Refusals"),
        and the demo strategies only buy. In a leveraged run a third of them go to the perpetual,
        at 20x with their pair beyond the liquidation price."""
        symbol = self.rng.choice(sorted(TRADED) + ([PERP] if self.leveraged else []))
        if symbol == PERP:
            self.submit_soon(*PERP_ENTRY[:1], common.SIDE_BUY, *PERP_ENTRY[1:])
            return
        stop = Decimal(str(round(self.rng.uniform(0.0002, 0.001), 5)))
        self.submit_soon(symbol, common.SIDE_BUY, TRADED[symbol], stop, 2 * stop)

    async def submit(
        self, symbol: str, side: common.Side.ValueType, size: Decimal, stop: Decimal, target: Decimal
    ) -> None:
        """One intent, sent again with its id until the inspector answers it."""
        intent_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.intents[entry_order_id(intent_id)] = intent_id
        mid = Decimal((await self.watch.candle(symbol)).close)
        sign = 1 if side == common.SIDE_BUY else -1
        tick = self.ticks[symbol]
        intent = am.Intent(
            intent_id=intent_id, venue="sim", symbol=symbol, side=side, size=str(size),
            entry_type=tf.ORDER_TYPE_MARKET, strategy_id="chaos", leverage=LEVERAGE if symbol == PERP else "",
            stop_loss=_on_grid(mid * (1 - sign * stop), tick, up=sign < 0),
            take_profit=_on_grid(mid * (1 + sign * target), tick, up=sign > 0),
        )  # fmt: skip
        deadline = time.monotonic() + SUBMIT_WITHIN_S
        sent = False
        while True:
            try:
                await self._resume_if_stood_down()
                answer = await self.stub.SubmitIntent(
                    rk.SubmitIntentRequest(intent=intent), metadata=_MESH_AUTH, timeout=CALL_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as exc:
                if sent and exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    self.answers["handled already (sent again)"] += 1  # its first sending got through
                    return
                if exc.code() not in _RETRIED or time.monotonic() > deadline:
                    self.answers[f"error {exc.code().name}"] += 1
                    return
                sent = True
                await asyncio.sleep(0.2)
                continue
            action = rk.RiskAction.Name(answer.action).removeprefix("RISK_ACTION_")
            policies = sorted({reason.policy for reason in answer.reasons if reason.policy})
            self.answers[" ".join([action, *policies])] += 1
            return

    async def _resume_if_stood_down(self) -> None:
        state = await self.stub.GetRiskState(
            rk.GetRiskStateRequest(), metadata=_MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
        if state.state == rk.RISK_STATE_STANDING_DOWN:
            request = rk.SetModeRequest(mode=rk.MODE_RESUME, reason="chaos run: trading on")
            await self.stub.SetMode(request, metadata=_MESH_AUTH, timeout=CALL_TIMEOUT_S)
            why = state.transitions[-1].reason if state.transitions else "?"
            self.resumed[why[:80]] += 1  # read after: a run that broke the bound says why it stood down

    async def trade(self, every_s: float, stop: asyncio.Event) -> None:
        while every_s and not stop.is_set():
            self.random_intent()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.5, 1.5) * every_s)

    async def finish(self) -> None:
        await asyncio.gather(*self.pending, return_exceptions=True)


def _on_grid(price: Decimal, tick: Decimal, up: bool) -> str:
    """The price on the tick grid, rounded away from the entry (never nearer than asked)."""
    return str((price / tick).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR) * tick)


def sim_text(config: ChaosConfig) -> str:
    """The sim's config: the tests' step and symbols with a minute of history; in a leveraged
    run, the perpetual too (isolated margin, falling, a funding time once a day)."""
    if not config.leveraged:
        return with_test_step(f"history_s = {WARM_HISTORY_S}\n")
    text = with_test_step(f'history_s = {WARM_HISTORY_S}\nmargin_mode = "isolated"\n')
    return text + (
        f'\n[[symbols]]\nsymbol = "{PERP}"\nstart_price = "65000"\ntick_size = "0.1"\n'
        f'lot_size = "0.001"\nfunding_rate = "0.0001"\nfunding_interval_s = 86400\n'
        f"drift_per_s = {config.drift_per_s}\nvolatility_per_sqrt_s = 0.0005\n"
        f"book_updates_per_s = {TEST_BOOK_UPDATES_PER_S}\nlevel_spacing_ticks = 10\n"
        f"maker_size_lots = 2000\ntaker_size_lots = 500\n"
    )


async def run_chaos(
    config: ChaosConfig, directory: Path, redis_url: str, database_url: str, say: Callable[[str], None]
) -> ChaosReport:
    """Start the mesh, run the chaos, read the outcome, stop the mesh."""
    sim_config = directory / "sim.toml"
    sim_config.write_text(sim_text(config))
    advisor_config = directory / "advisor.toml"
    advisor_config.write_text(ADVISOR_TEST_CONFIG)
    extra = {"advisor": ["--config", str(advisor_config), "--model-dir", str(directory / "models")]}
    began = time.monotonic()

    def tell(text: str) -> None:
        say(f"chaos {time.monotonic() - began:5.1f} s: {text}")

    tell(f"seed {config.seed}, plan {plan(config)}, in {directory}")
    async with chaos_mesh(directory, redis_url, database_url, sim_config, extra) as mesh:
        tell("mesh serving")
        watch = VenueWatch(mesh.address("venue"))
        watch.start()
        try:
            return await _run(config, mesh, watch, tell)
        finally:
            await watch.close()


async def _run(
    config: ChaosConfig, mesh: ChaosMesh, watch: VenueWatch, say: Callable[[str], None]
) -> ChaosReport:
    rng = random.Random(config.seed + 1)
    minimums, ticks = await watch.minimums(), await watch.ticks()
    trader = Trader(mesh.address("inspector"), watch, rng, ticks, config.leveraged)
    symbol, size, stop, target = ANCHOR
    await trader.submit(symbol, common.SIDE_BUY, size, stop, target)
    say(f"the anchor: {trader.answers}")
    samples: list[Sample] = []
    sampling = asyncio.create_task(_sample_margins(watch, samples)) if config.leveraged else None
    if config.leveraged:  # a leveraged position from the start, nearing its liquidation
        perp, size, stop, target = PERP_ENTRY
        await trader.submit(perp, common.SIDE_BUY, size, stop, target)
        say(f"the leveraged entry: {trader.answers}")
    start_ns = time.time_ns()
    trading = asyncio.Event()
    trade_task = asyncio.create_task(trader.trade(config.intent_every_s, trading))  # returns at 0
    kills: list[Kill] = []
    others: list[asyncio.Task[Kill]] = []  # kills of the other services, back in their own time
    freezes: list[Absence] = []
    protected: list[list[str]] = []
    try:
        events = plan(config)
        spread_ns = int((config.duration_s - config.freeze_s * config.freezes) * S)  # the freezes apart
        for index, (what, service) in enumerate(events):
            at = start_ns + int(spread_ns * (index + rng.uniform(0.2, 0.8)) / len(events))
            await asyncio.sleep(max(0.0, (at + len(freezes) * config.freeze_s * S - time.time_ns()) / S))
            if what == "freeze":
                if config.leveraged:  # frozen while a leveraged position nears its liquidation
                    near = await _near_liquidation(watch, samples)
                    say(f"a leveraged position near its liquidation: {near}")
                protected.append(await _protected(watch, minimums))
                freezes.append(await mesh.freeze(service, config.freeze_s))
                say(f"froze the inspector {config.freeze_s:.0f} s (pairs held: {protected[-1]})")
            elif service == "inspector":  # in the middle of an intent's check and placement
                if config.intent_every_s:
                    trader.random_intent()
                    await asyncio.sleep(rng.uniform(0.0, 0.05))
                kills.append(await mesh.kill(service))
                say(f"killed the inspector; back in {(kills[-1].end_ns - kills[-1].start_ns) / S:.1f} s")
            else:
                others.append(asyncio.create_task(mesh.kill(service)))
                say(f"killed {service}")
        await asyncio.sleep(max(0.0, start_ns / S + config.duration_s - time.time_ns() / S))
        kills = sorted([*kills, *await asyncio.gather(*others)], key=lambda k: k.start_ns)
        await asyncio.sleep(config.settle_s)  # the run's tail: the mesh undisturbed
        mesh.dump_tasks("inspector")  # where it waits, in its log (kept when the run breaks one)
    finally:
        for task in [*others, *([sampling] if sampling else [])]:
            task.cancel()
        trading.set()
        await trade_task
        await trader.finish()
        await trader.close()
    end_ns = time.time_ns()
    say("chaos over: the chain stops, the venue's orders are cancelled, the books read")
    report = await _outcome(config, mesh, watch, trader, (start_ns, end_ns), kills, freezes, protected)
    if config.leveraged:
        report.leveraged = await _leveraged(report, watch.executions, samples, mesh.env[REDIS_URL])
    say("read")
    return report


async def _sample_margins(watch: VenueWatch, samples: list[Sample]) -> None:
    """The venue's leveraged positions every MARGIN_EVERY_S: how near their liquidation."""
    while True:
        with contextlib.suppress(grpc.aio.AioRpcError):
            samples.extend(_samples(await watch.positions()))
        await asyncio.sleep(MARGIN_EVERY_S)


async def _near_liquidation(watch: VenueWatch, samples: list[Sample]) -> Sample | None:
    """Once the venue reports a leveraged position within NEAR of its liquidation price (None
    after NEAR_WITHIN_S: the run goes on, and the test says it did not come)."""
    deadline = time.monotonic() + NEAR_WITHIN_S
    while time.monotonic() < deadline:
        with contextlib.suppress(grpc.aio.AioRpcError):
            for found in _samples(await watch.positions()):
                samples.append(found)
                if found.distance <= NEAR:
                    return found
        await asyncio.sleep(0.1)
    return None


def _samples(positions: list[tf.Position]) -> list[Sample]:
    now = time.time_ns()
    return [
        Sample(
            now, p.symbol, Decimal(p.size), Decimal(p.margin_ratio or "0"),
            Decimal(p.liquidation_price or "0"), Decimal(p.mark_price or "0"),
        )
        for p in positions
        if p.symbol == PERP and Decimal(p.size or "0") != 0
    ]  # fmt: skip


async def _leveraged(
    report: ChaosReport, executions: list[tf.Execution], samples: list[Sample], redis_url: str
) -> Leveraged:
    """The liquidations, the inspector's events of them, and the windows they opened (taken out
    of the report's history: the venue cancelled the orders of a position it closed at once)."""
    liquidating = {
        (e.order.symbol, e.ts_event_ns) for e in executions if e.order.status_reason == LIQUIDATING
    }
    closed = {
        (e.order.symbol, e.ts_event_ns) for e in executions if e.HasField("fill") and e.fill.liquidation
    }

    def theirs(w: Window) -> bool:
        return (w.symbol, w.start_ns) in liquidating and (w.symbol, w.end_ns) in closed

    h = report.history
    windows = [w for w in h.pair if theirs(w)]
    report.history = History(
        [w for w in h.pair if not theirs(w)], [w for w in h.stop if not theirs(w)], h.dust
    )
    published = [
        event
        for fields in await stream_entries(redis_url, RISK)
        for event in bus.Envelope.FromString(fields[b"d"]).risk.events
    ]
    events = [(e.symbol, e.reason) for e in published if e.policy == "liquidation.venue"]
    reductions = len({e.reason for e in published if e.action == rk.RISK_ACTION_REDUCE})
    liquidations = [e.fill for e in executions if e.HasField("fill") and e.fill.liquidation]
    return Leveraged(liquidations, events, windows, samples, reductions)


async def _protected(watch: VenueWatch, minimums: dict) -> list[str]:  # type: ignore[type-arg]
    """The symbols whose positions have their pair at the venue, once one has (the anchor's)."""
    found: list[str] = []

    def any_protected() -> bool:
        found[:] = sorted(
            s for s, state in states(watch.executions, minimums).items() if state == "protected"
        )
        return bool(found)

    await watch.wait_for(any_protected, 60, "a position with its pair")
    return found


async def _outcome(
    config: ChaosConfig, mesh: ChaosMesh, watch: VenueWatch, trader: Trader, span: tuple[int, int],
    kills: list[Kill], freezes: list[Absence], protected: list[list[str]],
) -> ChaosReport:  # fmt: skip
    """The chain stopped, the venue quiet, its history and the books read."""
    await mesh.stop_services(["detector", "advisor", "inspector"])
    await watch.cancel_all()
    if config.leveraged:
        await watch.flatten(PERP)
    probe = await watch.barrier()
    executions = list(watch.executions)
    minimums = await watch.minimums()
    absences = [k.absence for k in kills if k.service == "inspector"] + freezes
    _keep(mesh.directory, executions, absences, span)
    await _keep_journal(mesh.directory, mesh.env[REDIS_URL])
    fills = [e.fill for e in executions if e.HasField("fill")]
    intent_of = dict(trader.intents)
    for intent in await _bus_intents(mesh.env[REDIS_URL]):
        intent_of.setdefault(entry_order_id(intent.intent_id), intent.intent_id)
    fees: dict[str, Decimal] = {}
    for fill in fills:
        fees[fill.fee_asset] = fees.get(fill.fee_asset, Decimal(0)) + Decimal(fill.fee or "0")
    ledger = await _ledger_check(mesh, watch, fills)
    ledger.margins = await _margin_check(mesh, watch)
    return ChaosReport(
        config=config,
        start_ns=span[0],
        end_ns=span[1],
        kills=kills,
        freezes=freezes,
        trips=list(watch.trips),
        protected_at_freeze=protected,
        history=history(executions, minimums, absences, span[1]),
        entries=entries(executions, intent_of, ignored=[probe]),
        intents=len(set(intent_of.values())),
        answers=trader.answers,
        resumed=trader.resumed,
        fills=len(fills),
        fees=dict(fees),
        realised=sum((Decimal(p.realized_pnl or "0") for p in await watch.positions()), Decimal(0)),
        ledger=ledger,
        gaps=list(watch.gaps),
    )


def _keep(
    directory: Path, executions: list[tf.Execution], absences: list[Absence], span: tuple[int, int]
) -> None:
    """The venue's history and the run's absences, for a second look (docs/chaos.md)."""
    (directory / EXECUTIONS).write_bytes(
        tf.StreamExecutionsResponse(executions=executions).SerializeToString()
    )
    run = {"start_ns": span[0], "end_ns": span[1], "absences": [dataclasses.asdict(a) for a in absences]}
    (directory / RUN).write_text(json.dumps(run, indent=1))


async def _keep_journal(directory: Path, redis_url: str) -> None:
    """The inspector's journal, every lifetime's entries in order (what its core was given:
    `python -m tests.chaos_journal <dir>` replays it through the core)."""
    entries = await stream_entries(redis_url, journal_stream("*"))
    data = b"".join(len(e[b"d"]).to_bytes(4, "big") + e[b"d"] for e in entries)
    (directory / JOURNAL).write_bytes(data)


async def _bus_intents(redis_url: str) -> list[am.Intent]:
    return [i for fields in await stream_entries(redis_url, INTENTS) for i in decode(fields).intents.intents]


async def _margin_check(mesh: ChaosMesh, watch: VenueWatch) -> dict[str, tuple[Decimal, Decimal]]:
    """Each asset whose margin the books hold (the cash ledger's cash_margin, pending) is not the
    venue's position margin: (books, venue)."""
    channel = grpc.aio.insecure_channel(mesh.address("ledger"))
    try:
        stub = lg_grpc.LedgerStub(channel)
        request = lg.GetBalancesRequest(venue="sim", ledger=lg.LEDGER_KIND_CASH)
        cash = await stub.GetBalances(request, metadata=_MESH_AUTH, timeout=CALL_TIMEOUT_S)
    finally:
        await channel.close()
    books: dict[str, Decimal] = {}
    for b in cash.balances:
        if b.account.code_name == "cash_margin":
            books[b.account.asset] = books.get(b.account.asset, Decimal(0)) + Decimal(b.debits_pending or "0")
    venue = await watch.margins()
    return {
        asset: (books.get(asset, Decimal(0)), venue.get(asset, Decimal(0)))
        for asset in set(books) | set(venue)
        if books.get(asset, Decimal(0)) != venue.get(asset, Decimal(0))
    }


def _cash_moves(fill: tf.Fill, base: str, quote: str) -> dict[str, Decimal]:
    """What a spot fill moves of the venue's cash, per asset (the venue's side of it)."""
    size, notional = Decimal(fill.size), Decimal(fill.size) * Decimal(fill.price)
    sign = 1 if fill.side == common.SIDE_BUY else -1
    moves = {base: sign * size, quote: -sign * notional}
    moves[fill.fee_asset] = moves.get(fill.fee_asset, Decimal(0)) - Decimal(fill.fee or "0")
    return {asset: amount for asset, amount in moves.items() if amount != 0}


_BOOKED_CASH = """
SELECT t.event_id, a.asset,
       sum(CASE WHEN t.debit_account_id = a.id THEN t.amount ELSE -t.amount END) AS moved
FROM ledger_transfers t
JOIN ledger_accounts a ON a.id IN (t.debit_account_id, t.credit_account_id)
WHERE a.code = 101 AND a.venue = 'sim' AND t.event_id LIKE 'fill/sim/%'
GROUP BY t.event_id, a.asset
"""


async def _booked(database_url: str) -> dict[str, dict[str, Decimal]]:
    """Each fill event in the books: its movements of the venue's cash per asset."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(_BOOKED_CASH)
        events = await connection.fetch("SELECT event_id FROM ledger_events WHERE event_id LIKE 'fill/sim/%'")
    finally:
        await connection.close()
    booked: dict[str, dict[str, Decimal]] = {row["event_id"]: {} for row in events}
    for row in rows:
        if row["moved"] != 0:
            booked.setdefault(row["event_id"], {})[row["asset"]] = row["moved"]
    return booked


async def _ledger_check(mesh: ChaosMesh, watch: VenueWatch, fills: list[tf.Fill]) -> LedgerCheck:
    expected = {f"fill/sim/{fill.fill_id}": fill for fill in fills}
    database = mesh.env[DATABASE_URL]
    deadline = time.monotonic() + LEDGER_WITHIN_S
    booked = await _booked(database)
    while set(expected) - set(booked) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        booked = await _booked(database)
    pairs = {s: (s.split("/")[0], s.split("/")[1]) for s in {f.symbol for f in fills}}
    # A spot fill's cash moves are the fill's own; a perpetual's are its realised PnL, which the
    # fill does not carry: its sums are checked by the balances, the margin and Verify.
    unequal = [
        f"{event}: books {booked[event]} venue {_cash_moves(fill, *pairs[fill.symbol])}"
        for event, fill in expected.items()
        if ":" not in fill.symbol
        and event in booked
        and booked[event] != _cash_moves(fill, *pairs[fill.symbol])
    ]
    channel = grpc.aio.insecure_channel(mesh.address("ledger"))
    try:
        stub = lg_grpc.LedgerStub(channel)
        verified = await stub.Verify(lg.VerifyRequest(), metadata=_MESH_AUTH, timeout=60)
        cash = await stub.GetBalances(
            lg.GetBalancesRequest(venue="sim", ledger=lg.LEDGER_KIND_CASH),
            metadata=_MESH_AUTH,
            timeout=CALL_TIMEOUT_S,
        )
        pnl = await stub.GetPnl(lg.GetPnlRequest(venue="sim"), metadata=_MESH_AUTH, timeout=CALL_TIMEOUT_S)
    finally:
        await channel.close()
    books = {
        b.account.asset: Decimal(b.balance) for b in cash.balances if b.account.code_name == "venue_cash"
    }
    venue = await watch.balances()
    differing = {
        asset: (books.get(asset, Decimal(0)), venue.get(asset, Decimal(0)))
        for asset in set(books) | set(venue)
        if books.get(asset, Decimal(0)) != venue.get(asset, Decimal(0))
    }
    problems = [
        *verified.problems,
        *(f"{m.account_id} {m.field}: {m.stored} != {m.recomputed}" for m in verified.mismatches),
    ]
    return LedgerCheck(
        missing=sorted(set(expected) - set(booked)),
        unknown=sorted(set(booked) - set(expected)),
        unequal=unequal,
        balances=differing,
        verify_ok=verified.ok,
        verify_problems=problems,
        by_strategy={
            p.strategy_id or "(unattributed)": (Decimal(p.realised or "0"), Decimal(p.fees or "0"), p.fills)
            for p in pnl.strategies
        },
    )
