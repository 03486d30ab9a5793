"""Where a `trademesh backtest` run's time goes, per stage of the chain: a py-spy raw profile
(`bench/backtest_e2e.py --py-spy FILE`) summed by stage (issue 62; docs/backtest-speed.md).

A sample goes to the stage of the innermost frame on its stack whose file is one of a stage's
(the first rule that matches, in the order below); frames of shared code (the platform, the domain other
than matching, protobuf, decimal, asyncpg, the standard library) fall through to their caller's
stage (asyncpg's calls to the loading's or the store's). A sample with no such frame is "start
and imports" (a `<module>` frame under the first) or "other" (the event loop, asyncpg's protocol
callbacks, the interpreter). An import of a stage's module counts as that stage.

    .venv/bin/python bench/backtest_e2e.py --repeats 0 --py-spy /tmp/e2e.raw
    .venv/bin/python bench/profile_stages.py /tmp/e2e.raw
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (stage, a pattern of the frame "function (file:line)"), the first that matches a frame wins.
STAGES: tuple[tuple[str, str], ...] = (
    ("report (report.html, its charts)", r"trademesh/core/backtest/(report|prices)\.py|matplotlib|PIL/"),
    (
        "store (the run into backtest_* tables)",
        r"trademesh/core/backtest/store\.py|trademesh/core/backtest/results\.py",
    ),
    ("outcome (trips, metrics, summary)", r"trademesh/core/backtest/(outcome|trips|metrics|summary)\.py"),
    (
        "loading from PostgreSQL",
        r"trademesh/core/backtest/(source|source_rows|rows|history_range|bar_feed|preload)\.py",
    ),
    (
        "advisor: regime reads",
        r"trademesh/core/advisor/engine/regime|trademesh/core/backtest/regimes\.py|trademesh/core/overwatch/",
    ),
    (
        "advisor: context (its bars, the book)",
        r"trademesh/core/advisor/(bar_window|book_feed)"
        r"|(warm|on_bars|on_trades|_keep|bars|_context) \(.*trademesh/core/backtest/advise",
    ),
    ("advisor: decision", r"trademesh/core/advisor/|trademesh/core/backtest/advise\.py"),
    (
        "hearing back (inspector views)",
        r"trademesh/core/inspector/views\.py|_hear \(.*trademesh/core/backtest/run\.py",
    ),
    ("inspector", r"trademesh/core/inspector/|trademesh/core/backtest/inspect\.py"),
    ("ledger (books, PnL)", r"trademesh/core/ledger/|trademesh/core/backtest/books\.py"),
    ("replayed venue and matching", r"trademesh/core/backtest/market\.py|trademesh/core/domain/matching/"),
    ("detector", r"trademesh/core/detector/|trademesh/core/backtest/detect\.py"),
    ("chain glue (schedule, samples, tape)", r"trademesh/core/backtest/(run|session|command|assemble)\.py"),
)
_COMPILED = [(stage, re.compile(pattern)) for stage, pattern in STAGES]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, pattern in _COMPILED:
            if pattern.search(frame):
                return stage
    if any(frame.startswith("<module>") for frame in frames[1:]) or "importlib" in "".join(frames):
        return "start and imports"
    return "other (event loop, asyncpg's protocol, interpreter)"


def load(path: Path) -> tuple[Counter[str], int]:
    stages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        stages[stage_of(stack.split(";"))] += int(count)
    return stages, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="a py-spy --format raw output file")
    args = parser.parse_args()
    stages, total = load(args.profile)
    print(f"{args.profile}: {total} samples")
    for stage, samples in stages.most_common():
        print(f"{100 * samples / max(total, 1):6.1f}%  {stage}")


if __name__ == "__main__":
    main()
