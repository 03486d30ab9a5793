"""bench/market_data_peer.py's looped capture (issue 17): each loop continues every symbol's book
sequence and trade ids, and moves times by whole minutes, so a client replaying it sees one long
session (no gap, no duplicate)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "fixtures" / "exchange-captures" / "BINANCE.ws.1.0"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("market_data_peer", ROOT / "bench" / "market_data_peer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("market_data_peer", module)
    spec.loader.exec_module(module)
    return module


def _frames(lines: list[str]) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for line in lines:
        head, _, body = line.partition(": ")
        if " " not in head:
            out.append((float(head), json.loads(body)["data"]))
    return out


def test_loops_continue_sequences_and_move_times() -> None:
    bench = _bench()
    source = [line for line in CAPTURE.read_text().splitlines() if line.strip()]
    one = _frames(source)
    lines = list(bench.loop_lines(source, 3))
    assert lines[0] == source[0]  # the connection line once, first
    frames = _frames(lines)
    assert len(frames) == 3 * len(one)
    # Loop 0's frames are the capture's own text.
    assert [line.partition(": ")[2] for line in lines[1 : len(one) + 1]] == [
        line.partition(": ")[2] for line in source[1:]
    ]
    last_u: dict[str, int] = {}
    agg_ids: list[tuple[str, int]] = []
    times = [ts for ts, _ in frames]
    assert times == sorted(times)
    for index, (ts, event) in enumerate(frames):
        loop, original = divmod(index, len(one))
        base_ts, base = one[original]
        assert abs(ts - (base_ts + 60 * loop)) < 1e-5
        if "E" in event:
            assert event["E"] == base["E"] + 60_000 * loop
        if event.get("e") == "depthUpdate":
            symbol = event["s"]
            if symbol in last_u:
                assert event["U"] == last_u[symbol] + 1, (loop, symbol)
            last_u[symbol] = event["u"]
            assert event["b"] == base["b"] and event["a"] == base["a"]  # the levels' text kept
        elif event.get("e") == "aggTrade":
            agg_ids.append((event["s"], event["a"]))
            assert event["T"] == base["T"] + 60_000 * loop
            assert event["p"] == base["p"] and event["q"] == base["q"]
        elif event.get("e") == "kline":
            assert event["k"]["t"] == base["k"]["t"] + 60_000 * loop
            assert event["k"]["t"] % 60_000 == 0
    assert len(agg_ids) == len(set(agg_ids)) == 3 * sum(1 for _, e in one if e.get("e") == "aggTrade")
    assert set(last_u) == {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"}


def test_trade_ids_follow_on_per_symbol() -> None:
    bench = _bench()
    lines = [
        "wss://x/stream?streams=a@aggTrade <-> 1.0",
        '2.0: {"stream":"a@aggTrade","data":{"e":"aggTrade","E":5,"s":"A","a":10,"p":"1","q":"2",'
        '"f":100,"l":102,"T":5,"m":true,"M":true}}',
        '3.0: {"stream":"a@aggTrade","data":{"e":"aggTrade","E":6,"s":"A","a":11,"p":"1","q":"2",'
        '"f":103,"l":103,"T":6,"m":false,"M":true}}',
    ]
    trades = [event for _, event in _frames(list(bench.loop_lines(lines, 2)))]
    assert [(t["a"], t["f"], t["l"]) for t in trades] == [
        (10, 100, 102),
        (11, 103, 103),
        (12, 104, 106),
        (13, 107, 107),
    ]
    assert [t["T"] for t in trades] == [5, 6, 60_005, 60_006]
