"""The live chain against its backtest, over fresh live sessions (issue 38): how much of what the
live chain did the backtest of its recording reproduces, and where they part.

Each session is tests/integration/chain_mesh.py's, recorded now (`TRADEMESH_CHAIN_LIVE=1`: the
sim, ingest, recorder, bars, bridge, advisor, inspector and detector as processes, then orders
placed by hand), its recording kept; the figures are read from it with the parity tests'
comparisons (tests/integration/chain_compare.py). The tests themselves run on the session
shipped in fixtures/chain-parity, where the answer is fixed; here a live session on this machine,
loaded as it is, decides it, so the figures are shares, not a gate.

    .venv/bin/python bench/chain_parity.py                 # 3 sessions
    .venv/bin/python bench/chain_parity.py --sessions 1 --no-save

Printed per session and in all: the backtest's signals equal to the live ones; the live
decisions whose intent (or block) the backtest made the same, and those apart, each classed as
the first difference or as one after an order of the window ended otherwise (its fills moved
the equity and so the sizes after it); the orders sent at a live twin's arrival with the same
request, and ending as the twin did. Redis and PostgreSQL as the tests find them ($REDIS_URL,
$DATABASE_URL, the default local ports, else embedded ones); each session's database is dropped
after its figures are read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from tests.integration.chain_compare import ChainReport, chain_report
from tests.integration.chain_mesh import Chain

_ROOT = Path(__file__).resolve().parents[1]
_TEST = "tests/integration/test_chain_parity.py"


def _record(kept: Path) -> int:
    """A live session recorded and kept in `kept` (the parity tests run on it as they go); the
    tests' exit status."""
    env = {**os.environ, "TRADEMESH_CHAIN_LIVE": "1", "TRADEMESH_CHAIN_KEEP": str(kept)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", _TEST]
    return subprocess.run(command, cwd=_ROOT, env=env, check=False).returncode


def _classes(report: ChainReport) -> dict[str, int]:
    """Each difference by its cause: an order apart (its request, or how it ended), an intent
    apart before any order parted (the first difference) or after one (the equity it moved)."""
    first_order_apart = min(
        (o.arrival_ns for o in report.orders if not (o.same_request and o.same_outcome)), default=None
    )
    found = {
        "order request apart": sum(1 for o in report.orders if not o.same_request),
        "order ended otherwise": sum(1 for o in report.orders if o.same_request and not o.same_outcome),
        "intent apart, the first difference": 0,
        "intent apart after an order ended otherwise": 0,
        "live decision without a backtest twin": len(report.untwinned),
    }
    for (event_ns, _, _), _ in report.apart:
        after = first_order_apart is not None and event_ns > first_order_apart
        found[
            "intent apart after an order ended otherwise" if after else "intent apart, the first difference"
        ] += 1
    return found


def _figures(report: ChainReport, tests_status: int) -> dict[str, Any]:
    return {
        "tests_passed": tests_status == 0,
        "signals_equal": report.signals_equal,
        "decisions": report.decisions,
        "decisions_equal": report.decisions - len(report.apart) - len(report.untwinned),
        "orders_at_twins": len(report.orders),
        "orders_equal": sum(1 for o in report.orders if o.same_request and o.same_outcome),
        "entries": report.entries,
        "entries_untwinned": report.entries_untwinned,
        "differences": _classes(report),
        "apart": [text for _, text in report.apart],
    }


async def _read(kept: Path) -> ChainReport:
    chain: Chain = pickle.loads((kept / "chain.pickle").read_bytes())
    try:
        return await chain_report(chain)
    finally:
        server, name = chain.database.rsplit("/", 1)
        await common.drop_database(f"{server}/postgres", name)


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole}" + (f" ({100 * part / whole:.0f}%)" if whole else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=3, help="live sessions to record (default 3)")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error(f"--sessions: must be at least 1, got {args.sessions}")
    sessions = []
    for index in range(args.sessions):
        kept = Path(tempfile.mkdtemp(prefix=f"chain-parity-{index}-"))
        status = _record(kept)
        figures = _figures(asyncio.run(_read(kept)), status)
        sessions.append(figures)
        print(f"session {index + 1}: {figures}")
    rows = [
        [i + 1, s["tests_passed"], s["signals_equal"], _share(s["decisions_equal"], s["decisions"]),
         _share(s["orders_equal"], s["orders_at_twins"])]
        for i, s in enumerate(sessions)
    ]  # fmt: skip
    common.print_table(["session", "tests passed", "signals equal", "decisions equal", "orders equal"], rows)
    if not args.no_save:
        common.write_result(
            "chain_parity",
            {"started": common.now_iso(), "machine": common.machine(), "command": common.command_line(),
             "sessions": sessions},
        )  # fmt: skip


if __name__ == "__main__":
    main()
