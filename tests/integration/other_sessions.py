"""Helpers of the tests replaying sessions of other recorders (fixtures/exchange-captures/other-recorders).

Expected values come from the capture files' own text, read here independently of the
stand-in; what the venue did with every frame comes from the replay's summary line.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.support import Venue

ROOT = Path(__file__).resolve().parents[2]
OTHER_SESSIONS = ROOT / "fixtures" / "exchange-captures" / "other-recorders"

_OPEN = re.compile(r"^(\S+) <-> [\d.]+$")
_RECEIVED = re.compile(r"^([\d.]+): (.*)$")
_SUMMARY = re.compile(
    r"replay summary: (?P<served>\d+) of (?P<total>\d+) captured frames served; "
    r"(?P<dropped>\d+) dropped(?: \((?P<reasons>[^)]*)\))?; (?:(?P<not_played>\d+) not played[^;]*; )?"
    r"(?P<control>\d+) control frames answered by the stand-in; (?P<reconnects>\d+) reconnects?; "
    r"synthesized: (?P<synthesized>[^;]*); REST refused: (?P<refused>.*)$",
    re.M,
)


def session_files(name: str) -> list[Path]:
    """The files of one session in other-recorders/ (e.g. "BYBIT_MIXED")."""
    files = sorted(p for p in OTHER_SESSIONS.glob(f"{name}.*") if p.name.split(".")[-1].isdigit())
    assert files, f"no session {name} in {OTHER_SESSIONS}"
    return files


@dataclass(frozen=True)
class Received:
    url: str | None  # the connection's url (None in a REST file)
    ts: float
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def received(files: list[Path]) -> list[Received]:
    """Every frame the capture's connections received, merged by time (each file's order kept)."""
    frames: list[Received] = []
    for path in files:
        url = None
        for line in path.read_text().splitlines():
            if opened := _OPEN.match(line):
                url = opened[1]
            elif got := _RECEIVED.match(line):
                frames.append(Received(url, float(got[1]), got[2]))
    return sorted(frames, key=lambda frame: frame.ts)


@dataclass
class Summary:
    served: int
    total: int
    dropped: int
    reasons: dict[str, int] = field(default_factory=dict)
    control: int = 0
    reconnects: int = 0
    synthesized: str = ""
    refused: str = ""


def parse_summary(log: str) -> Summary | None:
    found = list(_SUMMARY.finditer(log))
    if not found:
        return None
    m = found[-1]
    reasons = {}
    for part in (m["reasons"] or "").split(", "):
        if part:
            reason, count = part.rsplit(" ", 1)
            reasons[reason] = int(count)
    return Summary(
        served=int(m["served"]),
        total=int(m["total"]),
        dropped=int(m["dropped"]),
        reasons=reasons,
        control=int(m["control"]),
        reconnects=int(m["reconnects"]),
        synthesized=m["synthesized"],
        refused=m["refused"],
    )


async def summary_of(venue: Venue, timeout_s: float = 15.0) -> Summary:
    """The replay's summary line, once it has been written (playback has ended)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (summary := parse_summary(venue.log())) is None:
        assert loop.time() < deadline, f"no replay summary line in the venue's log:\n{venue.log()[-3000:]}"
        await asyncio.sleep(0.1)
    return summary
