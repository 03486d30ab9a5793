"""bench/market_data_peer.py's parts around the runs (issue 17): which streams are a side's, the
ratios of the pairs, a side's CPU with its stand-in, and the stand-in process's arguments."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from tests.unit.test_bench_capture_loop import ROOT, _bench

BENCH = ROOT / "bench" / "market_data_peer.py"


def test_each_side_reads_only_its_own_streams() -> None:
    bench = _bench()
    assert bench.side_streams("trademesh", "kraken") == "md.{kraken}.*"  # not a test suite's md.{sim}.*
    assert bench.side_streams("cryptofeed", "binance") == "*-BINANCE-*"


def test_pair_ratios_count_only_repeats_whose_two_runs_are_complete() -> None:
    runs = [
        {"repeat": 0, "side": "trademesh", "cpu_s_per_1000": 0.3, "complete": True},
        {"repeat": 0, "side": "cryptofeed", "cpu_s_per_1000": 0.1, "complete": True},
        {"repeat": 1, "side": "trademesh", "cpu_s_per_1000": 0.4, "complete": True},
        {"repeat": 1, "side": "cryptofeed", "cpu_s_per_1000": 0.05, "complete": False},
        {"repeat": 2, "side": "trademesh", "cpu_s_per_1000": 0.2, "complete": True},
        {"repeat": 2, "side": "cryptofeed", "cpu_s_per_1000": 0.1, "complete": True},
    ]
    assert [round(r, 6) for r in _bench().pair_ratios(runs)] == [3.0, 2.0]


def test_a_sides_cpu_with_its_stand_in_adds_it_only_when_it_ran_apart() -> None:
    bench = _bench()
    assert bench.with_standin({"cpu_s_per_1000": 0.2, "standin_cpu_s_per_1000": 0.05}) == 0.25
    inside = {"cpu_s_per_1000": 0.2, "standin_cpu_s_per_1000": math.nan}  # counted in the venue's
    assert bench.with_standin(inside) == 0.2


def test_the_stand_in_process_refuses_a_bad_venue_or_side(tmp_path: Path) -> None:
    for args in (["nowhere", "trademesh", "x"], ["binance", "somebody", "x"], ["binance", "trademesh"]):
        done = subprocess.run(
            [sys.executable, str(BENCH), "standin", *args], capture_output=True, text=True, timeout=120
        )
        assert done.returncode != 0
        assert "usage:" in done.stderr and "{cryptofeed,trademesh}" in done.stderr
