"""The races a chain session (tests/integration/chain_mesh.py) caught, found in the live
inspector's journal (trademesh.core.inspector.input_journal: every input of its core, in order, each with
the inspector's clock; a fill with the venue's time, an order's update with the venue's moment):

- **A fill against a cancel** (`cancel_races`): a protective order (a stop, or a target) the live
  core asked to cancel (a `CancelOrder`) or to resize (an `Amend`: a cancel, then its new form),
  and a fill of it heard after that. *In flight*: the venue made the fill after the core asked
  (a stop triggered, a target met, while the cancel was on its way); *crossed*: before, the
  fill on its way to us as the core asked. The issue's race is a stop's (`role` "stop_loss").
- **A fill against an answer** (`answer_races`): a venue's answer on one of our orders (its
  PlaceOrder, CancelOrder or GetOrder answer, or an update of its execution stream, journaled as
  the order's update: `updated_ns` the venue's moment of it) that does not hold a fill of the
  order the venue made after that moment and before the answer was heard.

- **Protection on the venue's word against the word's fills** (`word_races`): an entry's answer
  said it filled (docs/inspector-orders.md, "Sized by the venue's word") before its fills were heard,
  the core placed the pair on it, and one of the pair filled before the last fill the answer
  held was heard: the pair caught a market the fills alone would have had it miss.

What the core asked is found by replaying the journal through it (trademesh.core.inspector.driver), as a
restart does. The sim's clock and the inspector's are this machine's, so their times compare.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import Amend, CancelOrder, OrderRole, placed_by
from trademesh.core.inspector.engine.events import RiskOutput, RiskVerdict
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = [
    "AnswerRace", "CancelRace", "WordRace", "answer_races", "cancel_races", "fixture_journal", "word_races",
]  # fmt: skip


@dataclass(frozen=True)
class CancelRace:
    client_order_id: str  # the live protective order's
    symbol: str
    role: str  # "stop_loss" or "take_profit"
    how: str  # "cancel" or "resize": what the core asked
    asked_ns: int  # the journal entry whose output asked it
    filled_ns: int  # the venue's time of the first fill heard after that
    heard_ns: int  # when the inspector heard that fill

    @property
    def in_flight(self) -> bool:
        """The venue made the fill after the core asked (else they crossed)."""
        return self.asked_ns < self.filled_ns


@dataclass(frozen=True)
class AnswerRace:
    client_order_id: str
    symbol: str
    read_ns: int  # the venue's moment of its answer (the update's `updated_ns`)
    answered_ns: int  # when the inspector journaled the answer
    filled: str  # the size the answer says filled
    fill_ns: int  # the venue's time of the fill it does not hold
    heard_ns: int  # when the inspector heard that fill


@dataclass
class _Order:
    symbol: str
    role: OrderRole
    asked: tuple[int, str] | None = None  # the first cancel or resize asked: (when, how)
    raced: tuple[int, int] | None = None  # the first fill heard after it: (the venue's time, heard)


@dataclass(frozen=True)
class WordRace:
    entry: str  # the live entry's client order id
    protective: str  # the order of the pair placed on its answer that filled first
    symbol: str
    answered_ns: int  # when the inspector heard the answer (and placed the pair)
    filled_ns: int  # the venue's time of the protective order's first fill
    last_heard_ns: int  # when the inspector heard the last fill the answer held


def _entries(journal: Iterable[bytes | jr.JournalEntry]) -> list[jr.JournalEntry]:
    return [e if isinstance(e, jr.JournalEntry) else jr.JournalEntry.FromString(e) for e in journal]


def _replayed(entries: list[jr.JournalEntry]) -> Iterator[tuple[jr.JournalEntry, RiskOutput]]:
    """Each entry after the first (the core's start) with the live core's output on it."""
    if not entries:
        return
    core = new_core(entries[0])
    for entry in entries[1:]:
        result = apply_entry(core, entry)
        yield entry, result.output if isinstance(result, RiskVerdict) else result


def _fills(entries: list[jr.JournalEntry]) -> dict[str, list[tuple[int, int]]]:
    """Each order's fills heard: (the venue's time, heard), in the order heard."""
    fills: dict[str, list[tuple[int, int]]] = {}
    for entry in entries:
        if entry.WhichOneof("input") == "fill":
            fill = entry.fill.fill
            fills.setdefault(fill.client_order_id, []).append((fill.ts_event_ns, entry.now_ns))
    return fills


def cancel_races(journal: Iterable[bytes | jr.JournalEntry]) -> list[CancelRace]:
    """Every protective order of which a fill was heard after the live core asked to cancel or
    resize it, in the order heard."""
    orders: dict[str, _Order] = {}
    for entry, output in _replayed(_entries(journal)):
        if entry.WhichOneof("input") == "fill":
            fill = entry.fill.fill
            found = orders.get(fill.client_order_id)
            if found is not None and found.asked is not None and found.raced is None:
                found.raced = (fill.ts_event_ns, entry.now_ns)
        for action in output.actions:
            placed = placed_by(action)
            if placed is not None:
                orders[placed.client_order_id] = _Order(placed.symbol, placed.role)
            if isinstance(action, CancelOrder | Amend):
                old = orders.get(action.client_order_id)
                if old is not None and old.asked is None:
                    old.asked = (entry.now_ns, "resize" if isinstance(action, Amend) else "cancel")
    races = [
        CancelRace(cid, o.symbol, o.role.value, o.asked[1], o.asked[0], o.raced[0], o.raced[1])
        for cid, o in orders.items()
        if o.role.protective and o.asked is not None and o.raced is not None
    ]
    return sorted(races, key=lambda r: r.heard_ns)


def word_races(journal: Iterable[bytes | jr.JournalEntry]) -> list[WordRace]:
    """Every pair placed on an entry's answer one of whose orders filled before the last fill the
    answer held was heard, in the order answered."""
    entries = _entries(journal)
    fills = _fills(entries)
    races = []
    for entry, output in _replayed(entries):
        if entry.WhichOneof("input") != "order_update":
            continue
        answer = entry.order_update
        held = [heard for made, heard in fills.get(answer.client_order_id, ()) if made <= answer.updated_ns]
        if not held or max(held) <= entry.now_ns:
            continue  # nothing it held was still on its way
        for action in output.actions:
            placed = placed_by(action)
            first = None if placed is None else next(iter(fills.get(placed.client_order_id, ())), None)
            if placed is not None and placed.role.protective and first is not None and first[0] < max(held):
                races.append(WordRace(answer.client_order_id, placed.client_order_id, answer.symbol,
                                      entry.now_ns, first[0], max(held)))  # fmt: skip
                break
    return races


def answer_races(journal: Iterable[bytes | jr.JournalEntry]) -> list[AnswerRace]:
    """Every fill of one of our orders the venue made after the moment of an answer on it and
    before that answer was heard, in the order heard."""
    entries = _entries(journal)
    fills = _fills(entries)
    races = []
    for entry in entries:
        kind = entry.WhichOneof("input")
        if kind == "order_update":
            order = entry.order_update
        elif kind == "query_result" and entry.query_result.HasField("order"):
            order = entry.query_result.order
        else:
            continue
        for made, heard in fills.get(order.client_order_id, ()):
            if order.updated_ns < made < entry.now_ns:
                races.append(
                    AnswerRace(order.client_order_id, order.symbol, order.updated_ns, entry.now_ns,
                               order.filled_size, made, heard)
                )  # fmt: skip
    return sorted(races, key=lambda r: r.heard_ns)


def fixture_journal(fixture: Path) -> list[jr.JournalEntry]:
    """The live inspector's journal of a shipped session (tests/integration/chain_fixture)."""
    raw = json.loads((fixture / "session.json").read_text())
    return [jr.JournalEntry.FromString(base64.b64decode(entry)) for entry in raw["journal"]]
