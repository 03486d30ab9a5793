"""Summarise a py-spy raw (collapsed stacks) profile: the functions with the most samples.

    .venv/bin/py-spy record --pid PID --duration 10 --format raw --output /tmp/venue.raw
    .venv/bin/python bench/profile_summary.py /tmp/venue.raw --top 25

"self" counts samples whose innermost frame is the function; "inclusive" counts samples with
the function anywhere on the stack. Line numbers are dropped, so a function is one row. Without
--native, time spent in C (grpc's core, uvloop, upb) is charged to the nearest Python frame:
for a venue that is mostly `Runner.run` (the event loop) and `Thread.run` (grpc's poller thread).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def load(path: Path) -> tuple[Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return own, inclusive, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="a py-spy --format raw output file")
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    args = parser.parse_args()
    own, inclusive, total = load(args.profile)
    print(f"{args.profile}: {total} samples")
    for title, table in (("self", own), ("inclusive", inclusive)):
        print(f"\n{title:>9}  function (file)")
        for frame, samples in table.most_common(args.top):
            print(f"{100 * samples / max(total, 1):8.1f}%  {frame}")


if __name__ == "__main__":
    main()
