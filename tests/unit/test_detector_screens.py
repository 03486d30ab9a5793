"""Screen-driven strategies in the detector: the strategy file's screen key
(trademesh.core.detector.strategy_file.ScreenSymbols), the roster that turns a screen's results into
patches started and retired (trademesh.core.detector.screens), the live feed's reading of a result
(trademesh.core.detector.screen_feed.ranking_of), the venue feeds a newcomer gets
(trademesh.core.detector.feeds) and the runner muting a leaving patch's entries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.detector_support import BASE_NS, S, engine
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation, PositionRequest
from trademesh.core.detector.feedback import FeedbackTracker
from trademesh.core.detector.feeds import VenueFeeds
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.screen_feed import ranking_of
from trademesh.core.detector.screens import Ranking, ScreenRoster
from trademesh.core.detector.strategy_file import ScreenSymbols, load_strategy, parse_strategy
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.platform.bus.codec import FIELD, encode_bars, encode_screen_result
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.errors import Corrupt, InvalidArgument
from trademesh.core.screener.screen_file import SCREENS_DIR, load_screen
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.screener.v1 import screener_pb2 as sc

HOLD = 10 * S
STRATEGY = """
id = "screened"
venues = ["sim"]
symbols = {symbols}
cables = []

[[modules]]
id = "t"
type = "trades"
"""


def parsed(symbols: str, venues: str = '["sim"]') -> object:
    text = STRATEGY.format(symbols=symbols).replace('venues = ["sim"]', f"venues = {venues}")
    return parse_strategy(text, "screened.toml", Catalog.builtin())


def ranking(at_s: int, *symbols: str, top_n: int = 2, venue: str = "sim", hold_s: int = 10) -> Ranking:
    return Ranking("movers", venue, BASE_NS + at_s * S, tuple(symbols), top_n, hold_s * S)


class Positions:
    """The strategy's positions as the inspector would say them: open, flat, or not said yet."""

    def __init__(self) -> None:
        self.open: dict[str, bool | None] = {}

    def __call__(self, symbol: str) -> bool | None:
        return self.open.get(symbol, False)


def roster(top: int | None = None, hold_s: int | None = None, running: Sequence[str] = ()) -> ScreenRoster:
    screen = ScreenSymbols(screen="movers", top=top, min_hold_s=hold_s)
    return ScreenRoster("sim", screen, Positions(), running)


# ---- the strategy file


def test_a_strategy_takes_its_symbols_from_a_screens_table() -> None:
    strategy = parsed('{ screen = "sim-movers", top = 2, min_hold_s = 60 }')
    assert strategy.screen == ScreenSymbols(screen="sim-movers", top=2, min_hold_s=60)  # type: ignore[attr-defined]
    assert strategy.symbols == ()  # type: ignore[attr-defined]
    bare = parsed('{ screen = "sim-movers" }')
    assert bare.screen == ScreenSymbols(screen="sim-movers")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("symbols", "venues", "wanted"),
    [
        (
            '{ screen = "Movers!", top = 0, min_hold_s = -1, colour = "red" }',
            '["sim"]',
            {
                "symbols.screen": "'Movers!' is not a screen name",
                "symbols.top": "must be between 1 and 1000, got 0",
                "symbols.min_hold_s": "must be between 0 and 604800, got -1",
                "symbols.colour": "unknown key; known: screen, top, min_hold_s",
            },
        ),
        ("{ top = 5 }", '["sim"]', {"symbols.screen": "is required"}),
        ("5", '["sim"]', {"symbols": "5 is not a list of symbols or a screen's table"}),
        ("[]", '["sim"]', {"symbols": "must list at least 1"}),
        ('{ screen = "movers" }', '["sim", "binance"]', {"venues": "trades one venue (the screen's), not 2"}),
    ],
)
def test_a_bad_screen_key_is_refused_naming_the_key_and_the_file(
    symbols: str, venues: str, wanted: dict[str, str]
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parsed(symbols, venues)
    found = {v.field: v.description for v in caught.value.violations}
    assert set(found) == set(wanted), found
    for field, text in wanted.items():
        assert text in found[field] and found[field].endswith("(in screened.toml)"), found[field]


def test_a_strategy_without_symbols_is_refused_naming_them() -> None:
    text = STRATEGY.replace("symbols = {symbols}\n", "")
    with pytest.raises(InvalidArgument, match="symbols: is required: a list of symbols, or a screen's table"):
        parse_strategy(text, "screened.toml", Catalog.builtin())


# ---- the roster


def test_symbols_entering_the_set_start_and_leaving_after_the_hold_retire() -> None:
    r = roster()
    first = r.on_results([ranking(0, "A", "B")])
    assert first is not None and (first.start, first.retire, first.at_ns) == (("A", "B"), (), BASE_NS)
    assert not r.on_results([ranking(1, "A", "B")])  # nothing changed
    held = r.on_results([ranking(2, "A", "C")])  # B out of the top 2 s after it entered: held
    assert held is not None and not held and r.running == {"A", "B"}
    gone = r.on_results([ranking(10, "A", "C")])
    assert gone is not None and (gone.start, gone.retire) == (("C",), ("B",))
    assert r.running == {"A", "C"} and r.members == ("A", "C")


def test_the_strategys_top_and_hold_win_over_the_screens_but_never_above_its_top() -> None:
    r = roster(top=5, hold_s=0)
    change = r.on_results([ranking(0, "A", "B", top_n=2)])  # the screen's top is 2
    assert change is not None and change.start == ("A", "B")
    swapped = r.on_results([ranking(1, "C", "D", top_n=2)])  # no hold: out at once
    assert swapped is not None and (swapped.start, swapped.retire) == (("C", "D"), ("A", "B"))
    one = roster(top=1)
    change = one.on_results([ranking(0, "A", "B")])
    assert change is not None and change.start == ("A",)


def test_a_symbol_leaving_with_a_position_open_runs_on_until_flat() -> None:
    positions = Positions()
    r = ScreenRoster("sim", ScreenSymbols(screen="movers", min_hold_s=0), positions)
    r.on_results([ranking(0, "A", "B")])
    positions.open["B"] = True
    left = r.on_results([ranking(1, "A", "C")])
    assert left is not None and (left.start, left.retire, left.leaving) == (("C",), (), ("B",))
    assert r.leaving == {"B"} and r.running == {"A", "B", "C"}  # a newcomer starts beside it
    assert not r.settle(BASE_NS + 2 * S)  # still open
    positions.open["B"] = False
    flat = r.settle(BASE_NS + 3 * S)
    assert (flat.retire, flat.at_ns) == (("B",), BASE_NS + 3 * S) and r.running == {"A", "C"}


def test_a_position_not_known_yet_keeps_the_patch_and_a_leaving_symbol_may_come_back() -> None:
    positions = Positions()
    r = ScreenRoster("sim", ScreenSymbols(screen="movers", min_hold_s=0), positions)
    r.on_results([ranking(0, "A", "B")])
    positions.open["B"] = None  # the inspector not heard since the start
    left = r.on_results([ranking(1, "A", "C")])
    assert left is not None and left.leaving == ("B",) and not r.settle(BASE_NS + 2 * S)
    back = r.on_results([ranking(3, "B", "A")])  # C leaves (flat), B is a member again
    assert back is not None and (back.start, back.retire) == ((), ("C",)) and r.leaving == set()


def test_another_venues_results_and_repeats_are_not_followed() -> None:
    r = roster()
    assert r.on_results([ranking(0, "A", venue="binance")]) is None and r.foreign == 1
    assert r.on_results([ranking(5, "A", "B")]) is not None
    assert r.on_results([ranking(5, "C", "D"), ranking(4, "C", "D")]) is None  # not after the last
    assert r.members == ("A", "B")


def test_a_start_replays_the_retained_results_and_reconciles_the_restored_patches() -> None:
    r = roster(running=["A", "Z"])  # restored: Z left the set while the detector was away
    change = r.on_results([ranking(0, "A", "B"), ranking(3, "A", "C"), ranking(20, "A", "C")])
    assert change is not None and (change.start, change.retire) == (("C",), ("Z",))
    assert change.at_ns == BASE_NS + 20 * S
    assert r.members == ("A", "C")  # B entered at 0 and left at 20, after its hold
    before = roster(running=["A"])
    assert not before.settle(BASE_NS) and before.running == {"A"}  # no result yet: they run on


# ---- the wire, the inspector's word


def test_a_stream_entry_reads_as_the_top_of_its_result() -> None:
    result = sc.ScreenResult(screen="movers", venue="sim", computed_ns=BASE_NS, top_n=2, min_hold_s=600)
    for rank, symbol in enumerate(["ETH/USDT", "BTC/USDT", "SOL/USDT"], start=1):
        result.ranked.add(rank=rank, symbol=symbol)
    read = ranking_of({FIELD: encode_screen_result("screener", result)})
    assert read == Ranking("movers", "sim", BASE_NS, ("ETH/USDT", "BTC/USDT"), 2, 600 * S)
    with pytest.raises(Corrupt, match="not a screen result"):
        ranking_of({FIELD: encode_bars("bars", [])})


def test_the_trackers_share_is_unknown_until_the_inspector_answers() -> None:
    tracker = FeedbackTracker()
    assert tracker.share("screened", "sim", "BTC/USDT") is None
    position = rk.PositionView(venue="sim", symbol="BTC/USDT", average_price="100")
    position.strategies.add(name="screened", value="0.5")
    tracker.events(rk.GetRiskStateResponse(ts_ns=BASE_NS), [position])
    assert tracker.share("screened", "sim", "BTC/USDT") == 0.5
    assert tracker.share("screened", "sim", "ETH/USDT") == 0.0  # answered: none there


# ---- feeds, muting


async def test_a_newcomer_gets_a_feed_of_its_own_and_the_first_feed_is_kept() -> None:
    started: list[tuple[str, list[str]]] = []

    async def follow(link: VenueLink, symbols: list[str]) -> None:
        started.append((link.name, symbols))
        await asyncio.Event().wait()

    feeds = VenueFeeds(follow)
    link = VenueLink("sim", "127.0.0.1:1")
    feeds.sync({"sim": link}, {"sim": {"BTC/USDT", "ETH/USDT"}})
    feeds.sync({"sim": link}, {"sim": {"BTC/USDT", "SOL/USDT"}})  # ETH gone, SOL new
    await asyncio.sleep(0)
    assert started == [("sim", ["BTC/USDT", "ETH/USDT"]), ("sim", ["SOL/USDT"])]
    assert feeds.symbols("sim") == {"BTC/USDT": True, "ETH/USDT": True, "SOL/USDT": False}
    feeds.sync({"sim": link}, {"sim": {"BTC/USDT"}})  # SOL's own feed stops
    assert set(feeds.symbols("sim")) == {"BTC/USDT", "ETH/USDT"} and len(feeds.tasks) == 1
    moved = VenueLink("sim", "127.0.0.1:2")
    feeds.sync({"sim": moved}, {"sim": {"BTC/USDT", "SOL/USDT"}})  # moved: one feed again
    await asyncio.sleep(0)
    assert started[-1] == ("sim", ["BTC/USDT", "SOL/USDT"]) and len(feeds.tasks) == 1
    for task in feeds.tasks:
        task.cancel()
    await asyncio.gather(*feeds.tasks, return_exceptions=True)


def signal(patch_id: str) -> EmittedSignal:
    return EmittedSignal("id-" + patch_id, "s", patch_id, 1, "emit", "sim", patch_id[-1], Direction.LONG, 1.0,
                         1.0, 1.0, (), BASE_NS, BASE_NS)  # fmt: skip


async def test_a_muted_patchs_signals_are_dropped_and_its_position_requests_kept() -> None:
    emitted: list[Evaluation] = []

    async def emit(evaluation: Evaluation) -> None:
        emitted.append(evaluation)

    eng = engine()
    runner = PatchRunner(eng, emit)
    runner.muted = frozenset({"s/sim/B"})
    evaluation = Evaluation()
    evaluation.signals = [signal("s/sim/A"), signal("s/sim/B")]
    exit_ = PositionRequest("r", "s", "s/sim/B", 1, "x", "sim", "B", "close", Direction.FLAT, 1, BASE_NS, 0)
    evaluation.positions = [exit_]
    await runner._handle(evaluation)
    [out] = emitted
    assert [s.patch_id for s in out.signals] == ["s/sim/A"]
    assert [p.patch_id for p in out.positions] == ["s/sim/B"]
    assert [s.patch_id for s in runner.recent_signals] == ["s/sim/A"]


def test_the_example_follows_the_shipped_sim_movers_screens_top_2() -> None:
    """trademesh/core/detector/strategies/screen/movers_trend.toml, on a screen `trademesh up` runs."""
    strategy = load_strategy(
        Path("trademesh/core/detector/strategies/screen/movers_trend.toml"), Catalog.builtin()
    )
    assert strategy.screen == ScreenSymbols(screen="sim-movers", top=2, min_hold_s=900)
    assert strategy.venues == ("sim",) and strategy.symbols == ()
    shipped = load_screen(SCREENS_DIR / "sim-movers.toml")
    assert (shipped.venue, shipped.top) == ("sim", 3)
