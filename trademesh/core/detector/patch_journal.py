"""The detector's change journal: the one taker of the engine's change events.

`flush(engine)` takes the engine's changes (Engine.take_changes), publishes them as
PatchEvents to the API's streams (an in-memory log of the latest `capacity`), and writes them
through the PatchStore when there is one: each changed patch's row (or its deletion) and its
events, in one transaction per patch, so what one patch holds never keeps another's changes
from being saved. Changes not written because the database is away are kept and written with
the next flush (the flush that failed raises Unavailable); a patch whose values the database
refuses (which no retry would mend) has its changes dropped from the store's side, logged,
and the flush raises FailedPrecondition after writing the other patches: the engine keeps the
change, its row stays the last one saved.

The shell calls `flush` after every evaluate_due/tick (cheap when nothing changed: no
database call); the API calls it after every edit. `Pulse` is the wake-up both use.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from trademesh.core.detector.convert import change_to_pb
from trademesh.core.detector.engine.changes import Change
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.store import PatchStore, restore
from trademesh.core.platform.errors import FailedPrecondition, TrademeshError
from trademesh.core.platform.rpc.pulse import Pulse
from trademesh.patch.v1 import patch_pb2 as pb

__all__ = ["PatchJournal", "Pulse"]

log = logging.getLogger(__name__)


class PatchJournal:
    def __init__(self, store: PatchStore | None = None, capacity: int = 10_000) -> None:
        self.store = store
        self.pulse = Pulse()
        self._log: deque[tuple[int, pb.PatchEvent]] = deque(maxlen=capacity)
        self._sequence = 0
        self._unsaved: list[Change] = []
        self._writing = asyncio.Lock()

    @property
    def sequence(self) -> int:
        """How many events were published so far (a stream starts after it)."""
        return self._sequence

    async def flush(self, engine: Engine) -> list[Change]:
        """Publish and persist the engine's new changes; those taken."""
        changes = engine.take_changes()
        self.publish(engine, changes)
        self._unsaved += changes
        if self.store is not None and self._unsaved:
            await self._write(engine, self.store)
        else:
            self._unsaved.clear()
        return changes

    def publish(self, engine: Engine, changes: list[Change]) -> None:
        """Changes as events for the streams (no persistence)."""
        for change in changes:
            patch = engine.patches.get(change.patch_id)
            self._sequence += 1
            self._log.append((self._sequence, change_to_pb(change, patch.state if patch else None)))
        if changes:
            self.pulse.bump()

    def events_after(self, sequence: int, patch_id: str = "") -> tuple[list[pb.PatchEvent], int]:
        """The events published after `sequence` (of `patch_id`, every patch's when empty), and
        the sequence they go up to. Events older than the log's capacity are gone."""
        found = [
            event
            for number, event in self._log
            if number > sequence and (not patch_id or event.patch_id == patch_id)
        ]
        return found, self._sequence

    async def restore(self, engine: Engine, now_ns: int) -> dict[str, PatchState]:
        """Rebuild every stored patch of this instance in `engine` (store.restore); the state
        each wants. Call before serving: changes pending before it are flushed first. A patch
        that cannot be rebuilt (its module type is gone) is logged and left out; its row stays."""
        if self.store is None:
            return {}
        await self.flush(engine)
        wanted: dict[str, PatchState] = {}
        for stored in await self.store.load_all():
            try:
                wanted[stored.patch_id] = restore(engine, stored, now_ns)
            except TrademeshError as exc:  # e.g. a module type no longer in the catalog
                engine.patches.pop(stored.patch_id, None)
                log.error("patch %s cannot be restored, left out: %s", stored.patch_id, exc)
        engine.take_changes()  # the rebuild's events: not changes
        return wanted

    async def _write(self, engine: Engine, store: PatchStore) -> None:
        async with self._writing:
            refused: list[FailedPrecondition] = []
            for patch_id, changes in _by_patch(list(self._unsaved)).items():
                try:
                    await _write_patch(engine, store, patch_id, changes)
                except FailedPrecondition as exc:
                    log.error("detector: patch %s: changes not saved: %s", patch_id, exc)
                    refused.append(FailedPrecondition(f"patch {patch_id!r} cannot be saved: {exc}"))
                # Unavailable goes up: this patch's changes and the ones after it stay unsaved.
                done = {id(change) for change in changes}
                self._unsaved = [change for change in self._unsaved if id(change) not in done]
            if refused:
                raise refused[0]


def _by_patch(changes: list[Change]) -> dict[str, list[Change]]:
    """The changes by patch, patches in the order of their first change."""
    grouped: dict[str, list[Change]] = {}
    for change in changes:
        grouped.setdefault(change.patch_id, []).append(change)
    return grouped


async def _write_patch(engine: Engine, store: PatchStore, patch_id: str, changes: list[Change]) -> None:
    patch = engine.patches.get(patch_id)
    if patch is None:
        await store.write([], [patch_id], changes)
    else:
        await store.write([patch], [], changes)
