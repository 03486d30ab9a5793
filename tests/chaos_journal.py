"""A chaos run's inspector journal (`journal.bin`, kept with its files: docs/chaos.md) replayed
through the core, printing what each input of one market made it do: the input, the position
the core then held, and the order actions. For reading a window the run reported.

    .venv/bin/python -m tests.chaos_journal /tmp/trademesh-chaos-XXXX BTC/USDT [from_s to_s]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import Amend, CancelOrder, OrderAction, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskVerdict
from trademesh.risk.v1 import journal_pb2 as jr


def journal(path: Path) -> Iterator[jr.JournalEntry]:
    data, at = path.read_bytes(), 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        yield jr.JournalEntry.FromString(data[at + 4 : at + 4 + size])
        at += 4 + size


def about(entry: jr.JournalEntry) -> tuple[str, str]:
    """The entry's market symbol ('' when none) and a line saying what it is."""
    kind = entry.WhichOneof("input") or ""
    if kind == "fill":
        fill = entry.fill.fill
        return fill.symbol, f"fill {fill.client_order_id[:8]} {fill.size}@{fill.price}"
    if kind == "order_update":
        o = entry.order_update
        return o.symbol, f"update {o.client_order_id[:8]} status {o.status} filled {o.filled_size}"
    if kind == "intent":
        return entry.intent.intent.symbol, f"intent {entry.intent.intent.intent_id[:8]}"
    if kind == "mark":
        return entry.mark.symbol, f"mark {entry.mark.price}"
    return "", kind


def action_text(action: OrderAction) -> str:
    if isinstance(action, Amend):
        return f"amend {action.client_order_id[:8]} -> {action.order.client_order_id[:8]} {action.order.size}"
    if isinstance(action, PlaceOrder):
        return f"place {action.client_order_id[:8]} {action.role.value} {action.size}"
    if isinstance(action, CancelOrder):
        return f"cancel {action.client_order_id[:8]} ({action.reason})"
    return type(action).__name__


def held(core: InspectorCore, symbol: str) -> str:
    keys = [*core.book.positions.positions, *(w.key for w in core.book.orders)]
    key = next((k for k in keys if k[1] == symbol), None)
    if key is None:
        return "flat"
    size, said = core.book.positions.size(key), core.book.venue_position(key)
    word = f" (the venue's word: {said})" if said != size else ""  # an entry's fills on their way
    layers = [
        f"{w.order.role.value[:4]}:{w.order.client_order_id[:8]}={w.remaining}{'x' if w.cancelling else ''}"
        for w in core.book.orders
        if w.key == key and w.order.role.protective
    ]
    return f"position {size}{word}; {' '.join(layers)}"


def main(directory: str, symbol: str, since_s: float = 0.0, until_s: float = 1e12) -> None:
    entries = iter(journal(Path(directory) / "journal.bin"))
    core = new_core(next(entries))
    for entry in entries:
        if entry.WhichOneof("input") == "start":  # a fresh journal of a later lifetime
            core = new_core(entry)
            continue
        result = apply_entry(core, entry)
        output = result.output if isinstance(result, RiskVerdict) else result
        market, text = about(entry)
        at = entry.now_ns / 1e9
        mine = [a for a in output.actions if getattr(a, "symbol", market) == symbol]
        if since_s <= at <= until_s and (market == symbol or mine):
            print(f"{at:.3f} {text}\n    {held(core, symbol)}")
            for action in mine:
                print(f"    -> {action_text(action)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:5]))
