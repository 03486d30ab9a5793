"""A sim config that would kill or swamp the market is refused: one line naming the key and the
file, exit code 2.

(Issue 12, item 14: `tick_interval_ms = 0` or a NaN volatility gave a venue that reported
SERVING and RUNNING with a dead market; a depth of 1e8 ate 870 MB and never served.) Every
case runs `python -m trademesh.core.cli venue sim --config bad.toml` as a user would. A venue that
starts serving instead of refusing is killed at the deadline and the case fails.

The ranges themselves are documented in trademesh/venues/sim/config.py and docs/venues.md; the unit
tests (tests/unit/test_sim_config.py) cover every key's bounds.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.forked_services import run_command

pytestmark = pytest.mark.integration

# A refusal exits in seconds; a start past this is a venue that served (it says so on stdout) or
# one that hung. Generous: 8 processes start at once, and on a loaded 2-core machine each
# import of the service took longer than the 25 s this was (two cases "served" in a fast tier).
_DEADLINE_S = 120

_SYMBOL = '[[symbols]]\nsymbol = "BTC/USDT"\nstart_price = "65000"\ntick_size = "0.01"\nlot_size = "0.001"\n'

# (case, config text, what the one stderr line must say)
CASES: list[tuple[str, str, str]] = [
    ("step of zero", "tick_interval_ms = 0\n", "tick_interval_ms: must be between 1 and 1000, got 0"),
    ("step too long", "tick_interval_ms = 3600000\n", "tick_interval_ms: must be between 1 and 1000"),
    ("ticker interval", "ticker_interval_ms = 0\n", "ticker_interval_ms: must be between 10 and 60000"),
    ("candle interval", "candle_interval_ms = -1\n", "candle_interval_ms: must be between 100 and 60000"),
    ("negative seed", "seed = -1\n", "seed: must be between 0 and"),
    ("fee too high", 'taker_fee_rate = "0.5"\n', "taker_fee_rate: must be between 0 and 0.1, got 0.5"),
    ("fee negative", 'taker_fee_rate = "-0.01"\n', "taker_fee_rate: must be between 0 and 0.1"),
    ("closed orders kept", "closed_orders_kept = 0\n", "closed_orders_kept: must be between 100 and"),
    ("price band", 'price_band_ratio = "1"\n', "price_band_ratio: must be between 1.01 and 1000"),
    ("volatility nan", _SYMBOL + "volatility_per_sqrt_s = nan\n",
     "symbols[0].volatility_per_sqrt_s: nan is not a finite number"),
    ("volatility inf", _SYMBOL + "volatility_per_sqrt_s = inf\n",
     "symbols[0].volatility_per_sqrt_s: inf is not a finite number"),
    ("volatility huge", _SYMBOL + "volatility_per_sqrt_s = 5\n",
     "symbols[0].volatility_per_sqrt_s: must be between 0 and 0.01, got 5"),
    ("trade rate nan", _SYMBOL + "trades_per_s = nan\n",
     "symbols[0].trades_per_s: nan is not a finite number"),
    ("trade rate huge", _SYMBOL + "trades_per_s = 1e9\n",
     "symbols[0].trades_per_s: must be between 0 and 1000"),
    ("book rate huge", _SYMBOL + "book_updates_per_s = 1e7\n",
     "symbols[0].book_updates_per_s: must be between 0 and 10000"),
    ("depth 1e8", _SYMBOL + "book_depth_levels = 100000000\n",
     "symbols[0].book_depth_levels: must be between 1 and 1000, got 100000000"),
    ("spacing huge", _SYMBOL + "level_spacing_ticks = 10000000000\n",
     "symbols[0].level_spacing_ticks: must be between 1 and 1000000"),
    ("maker lots", _SYMBOL + "maker_size_lots = 0\n", "symbols[0].maker_size_lots: must be between 1 and"),
    ("price huge", '[[symbols]]\nsymbol = "BTC/USDT"\nstart_price = "1000000000000000"\ntick_size = "1"\n'
     'lot_size = "1"\n', "symbols[0].start_price: must be more than 0 and at most 1000000000000"),
    ("tick too fine", '[[symbols]]\nsymbol = "BTC/USDT"\nstart_price = "65000"\n'
     'tick_size = "0.00000000000001"\nlot_size = "1"\n', "symbols[0].tick_size: too fine"),
    ("negative minimum", _SYMBOL + 'min_size = "-1"\n', "symbols[0].min_size: must be between 0 and"),
    ("no symbols", "symbols = []\n", "symbols: must list between 1 and 100, got 0"),
    ("symbols not tables", "symbols = [1, 2]\n", "symbols[0]: 1 is not a table"),
    ("duplicate symbol", _SYMBOL + _SYMBOL, "symbols[1].symbol: 'BTC/USDT' is listed twice"),
    ("empty base", '[[symbols]]\nsymbol = "/USDT"\nstart_price = "1"\ntick_size = "1"\nlot_size = "1"\n',
     "symbols[0].symbol: '/USDT': the sim trades spot, BASE/QUOTE"),
    ("missing key", '[[symbols]]\nsymbol = "BTC/USDT"\ntick_size = "1"\nlot_size = "1"\n',
     "symbols[0].start_price: is required"),
    ("balances not a table", "balances = 5\n", "balances: 5 is not a table of ASSET = amount"),
    ("negative balance", '[balances]\nUSDT = "-5"\n', "balances.USDT: must be between 0 and"),
]  # fmt: skip


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    args = ["venue", "sim", "--port", "0", "--metrics-port", "-1", "--config", str(config)]
    try:
        return run_command(args, {**os.environ, "TRADEMESH_TOKEN": "t"}, timeout_s=_DEADLINE_S)
    except subprocess.TimeoutExpired as exc:  # it served instead of refusing, or hung
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        what = "it served" if '"serving"' in out else "it never served nor refused"
        return subprocess.CompletedProcess(exc.cmd, -9, out, f"still running after {_DEADLINE_S} s: {what}\n")


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Every case run at once (each is a process start and a refusal), answers by case name."""
    folder = tmp_path_factory.mktemp("sim-configs")
    paths = {}
    for index, (name, text, _) in enumerate(CASES):
        paths[name] = folder / f"bad-{index}.toml"
        paths[name].write_text(text)
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = dict(zip(paths, pool.map(_run, paths.values()), strict=True))
    yield done


@pytest.mark.parametrize(("name", "says"), [(c[0], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_sim_config_is_one_line_naming_the_key_and_the_file_and_exit_code_2(
    results: dict[str, subprocess.CompletedProcess[str]], name: str, says: str
) -> None:
    done = results[name]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and says in lines[0], done.stderr[-2000:]
    assert lines[0].endswith(f" (in {done.args[-1]})"), lines[0]  # the file named
    assert done.stdout == ""
