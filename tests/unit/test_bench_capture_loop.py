"""bench/market_data_peer.py's looped captures (issue 17). Binance: each loop continues every
symbol's book sequence and trade ids, and moves times by whole minutes, so a client replaying it
sees one long session (no gap, no duplicate). Kraken (v1: no sequence numbers, checksummed
books): each loop opens the books with the capture's snapshots again, so every update's
checksum holds, and moves times by whole minutes."""

from __future__ import annotations

import heapq
import importlib.util
import json
import sys
import zlib
from decimal import Decimal
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


# ---- Kraken (WebSocket v1): no sequence numbers, a CRC32 of the top 10 levels on each update

KRAKEN = ROOT / "fixtures" / "exchange-captures"


def _kraken_checksum(book: dict[str, dict[Decimal, tuple[str, str]]]) -> int:
    """Kraken v1's checksum, written from its docs: the 10 best asks (ascending) then bids
    (descending), price and volume as sent with the point and leading zeros removed, CRC32."""
    asks = [book["a"][p] for p in heapq.nsmallest(10, book["a"])]
    bids = [book["b"][p] for p in heapq.nlargest(10, book["b"])]
    text = "".join(v.replace(".", "").lstrip("0") for level in asks + bids for v in level)
    return zlib.crc32(text.encode())


def _follow(book: dict[str, dict[Decimal, tuple[str, str]]], side: str, levels: list[list[str]]) -> None:
    for price, volume, *_ in levels:
        if Decimal(volume) == 0:
            book[side].pop(Decimal(price), None)
        else:
            book[side][Decimal(price)] = (price, volume)
    for dropped in sorted(book[side], reverse=side == "b")[1000:]:  # the subscribed depth
        del book[side][dropped]


def test_kraken_loops_start_from_the_snapshots_and_every_checksum_holds() -> None:
    bench = _bench()
    source = [line for line in (KRAKEN / "KRAKEN.ws.50.0").read_text().splitlines() if line.strip()]
    data = [line for line in source if line.partition(": ")[2].startswith("[")]
    lines = list(bench.kraken_loop_lines(source, 3))
    head = len(source) - len(data)
    assert lines[:head] == [line for line in source if line not in data]  # the rest once, first
    assert lines[head : head + len(data)] == data  # loop 0 is the capture's own text
    assert len(lines) == head + 3 * len(data)
    books: dict[str, dict[str, dict[Decimal, tuple[str, str]]]] = {}
    checked = snapshots = 0
    times = [float(line.partition(": ")[0]) for line in lines[head:]]
    assert times == sorted(times)
    for index, line in enumerate(lines[head:]):
        loop, original = divmod(index, len(data))
        ts, _, body = line.partition(": ")
        assert abs(float(ts) - (float(data[original].partition(": ")[0]) + 60 * loop)) < 1e-5
        message = json.loads(body)
        pair, payloads = message[-1], message[1:-2]
        if "as" in payloads[0]:  # each loop opens every pair's book with its snapshot again
            snapshots += 1
            books[pair] = {"a": {}, "b": {}}
            _follow(books[pair], "a", payloads[0]["as"])
            _follow(books[pair], "b", payloads[0]["bs"])
            stamps = [level[2] for level in payloads[0]["as"]]
            base = json.loads(data[original].partition(": ")[2])[1]["as"]
            assert [Decimal(s) - Decimal(b[2]) for s, b in zip(stamps, base, strict=True)] == [
                60 * loop
            ] * len(base)
            continue
        for payload in payloads:
            _follow(books[pair], "a", payload.get("a", []))
            _follow(books[pair], "b", payload.get("b", []))
        crc = [p["c"] for p in payloads if "c" in p]
        assert crc, line
        assert _kraken_checksum(books[pair]) == int(crc[0]), (loop, pair, original)
        checked += 1
    assert snapshots == 3 * 10
    assert checked == 3 * (len(data) - 10)


def test_kraken_trade_times_move_by_whole_minutes_text_kept() -> None:
    bench = _bench()
    lines = [
        "wss://ws.kraken.com <-> 1.0",
        '2.0: {"event":"heartbeat"}',
        '3.0: [1,[["56218.30000","0.15000000","1618678133.000100","b","l",""]],"trade","XBT/CHF"]',
    ]
    out = list(bench.kraken_loop_lines(lines, 3))
    assert out[:2] == lines[:2]  # control frames once
    trades = [json.loads(line.partition(": ")[2])[1][0] for line in out[2:]]
    assert [t[2] for t in trades] == ["1618678133.000100", "1618678193.000100", "1618678253.000100"]
    assert {(t[0], t[1]) for t in trades} == {("56218.30000", "0.15000000")}
