"""What a replay did with every captured frame, and what it made up: nothing is lost silently.

Each frame a capture's connections received ends in exactly one bucket: served (written to
at least one client connection), control (an ack, pong or heartbeat: the stand-in answers
those itself), or dropped for one reason (Drop). Frames a replay stopped before reaching are
"not played". The replay ends with one summary line (ReplayTally.summary), e.g.

    replay summary: 1240 of 1300 captured frames served; 48 dropped (other-market 40,
    unsubscribed 8); 12 control frames answered by the stand-in; 1 reconnect;
    synthesized: bybit instruments-info; REST refused: none
"""

from __future__ import annotations

import collections
import enum
import logging
from dataclasses import dataclass, field

__all__ = ["Drop", "ReplayTally"]

log = logging.getLogger(__name__)

_EXAMPLE_CHARS = 160


class Drop(enum.Enum):
    """Why a captured frame was not served (its value is the summary's name for it)."""

    UNRECOGNIZED = "unrecognized"  # neither market data nor a control frame the stand-in knows
    UNREADABLE = "unreadable"  # the stand-in failed reading or rendering it (not JSON, fields missing)
    OTHER_MARKET = "other-market"  # market data of an endpoint this venue never uses (e.g. Bybit linear)
    UNSUBSCRIBED = "unsubscribed"  # played while no client connection was subscribed to its topic
    CLOSED = "closed"  # its client connection closed before it was written
    FAULT = "fault"  # dropped by a `gap` fault


@dataclass
class ReplayTally:
    total: int = 0  # frames the capture's connections received
    served: int = 0
    control: int = 0
    not_played: int = 0
    reconnects: int = 0
    dropped: collections.Counter[Drop] = field(default_factory=collections.Counter)
    unsubscribed_topics: collections.Counter[str] = field(default_factory=collections.Counter)
    synthesized: dict[str, str] = field(default_factory=dict)  # answer kind -> what was made up
    refused: collections.Counter[str] = field(default_factory=collections.Counter)  # REST paths: 404
    held: list[str] | None = None  # log lines kept until release() (a capture refused logs none)

    def hold(self) -> None:
        """Keep the log lines until release(): a capture refused at start logs only why."""
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for line in held:
            log.warning("%s", line)

    def _log(self, line: str) -> None:
        if self.held is not None:
            self.held.append(line)
        else:
            log.warning("%s", line)

    def drop(self, reason: Drop, example: str = "") -> None:
        """Count a dropped frame; the first of each reason is logged with the frame's start."""
        if self.dropped[reason] == 0:
            self._log(f"replay: dropped a captured frame ({reason.value}): {example[:_EXAMPLE_CHARS]}")
        self.dropped[reason] += 1

    def synthesize(self, kind: str, detail: str) -> None:
        """Note an answer the capture does not hold and the stand-in made up (logged once per kind)."""
        if kind not in self.synthesized:
            self.synthesized[kind] = detail
            self._log(f"replay: synthesized {kind} (the capture holds none): {detail}")

    def refuse(self, path: str) -> None:
        if path not in self.refused:
            self._log(f"replay: no recorded answer for {path} and none can be synthesized: 404")
        self.refused[path] += 1

    def summary(self) -> str:
        dropped = sum(self.dropped.values())
        reasons = ", ".join(f"{reason.value} {count}" for reason, count in _sorted_counts(self.dropped))
        parts = [
            f"{self.served} of {self.total} captured frames served",
            f"{dropped} dropped" + (f" ({reasons})" if reasons else ""),
            f"{self.control} control frames answered by the stand-in",
            f"{self.reconnects} reconnect{'' if self.reconnects == 1 else 's'}",
            "synthesized: " + (", ".join(self.synthesized) or "nothing"),
            "REST refused: " + (", ".join(f"{p} x{n}" for p, n in self.refused.items()) or "none"),
        ]
        if self.not_played:
            parts.insert(2, f"{self.not_played} not played (the replay was stopped)")
        return "replay summary: " + "; ".join(parts)


def _sorted_counts(counts: collections.Counter[Drop]) -> list[tuple[Drop, int]]:
    return sorted(
        ((reason, n) for reason, n in counts.items() if n), key=lambda item: (-item[1], item[0].value)
    )
