"""Daily time partitions: created ahead and on demand, dropped by retention.

Natively partitioned tables (no TimescaleDB) get one partition per UTC day, named
<table>_YYYYMMDD, for days from 2000 to 2099; rows outside those years (a zero or absurd
timestamp) land in <table>_default. Before each batch the writer makes sure every day the
batch touches has its partition, so a row never lands in the default partition by accident;
if one did (another process dropped the day meanwhile), creating the day moves its rows out
of the default partition first. TimescaleDB hypertables make their own daily chunks; for them
this module only applies retention (drop_chunks).

Creating and dropping take one advisory lock, so several recorders can share a database.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import asyncpg

from trademesh.core.recorder.rows import Row
from trademesh.core.recorder.schema import TABLES, Table

__all__ = ["DAY_NS", "FIRST_DAY", "LAST_DAY", "PARTITION_LOCK", "Partitions", "day_of", "partition_name"]

log = logging.getLogger(__name__)

DAY_NS = 86_400 * 1_000_000_000
_EPOCH = dt.date(1970, 1, 1)
# Days (since the epoch) that get their own partition: 2000-01-01 .. 2099-12-31.
FIRST_DAY = (dt.date(2000, 1, 1) - _EPOCH).days
LAST_DAY = (dt.date(2099, 12, 31) - _EPOCH).days
PARTITION_LOCK = 0x74_6D_72_65_63_70  # "tmrecp": pg_advisory_xact_lock key
_DAY_SUFFIX = re.compile(r"_(\d{8})$")

_CHILDREN = """
SELECT parent.relname AS name, parent.relkind = 'p' AS native, child.relname AS child
FROM pg_class parent
LEFT JOIN pg_inherits link ON link.inhparent = parent.oid
LEFT JOIN pg_class child ON child.oid = link.inhrelid
WHERE parent.oid IN (SELECT to_regclass(name) FROM unnest($1::text[]) AS name)
"""


def day_of(ts_ns: int) -> int:
    return ts_ns // DAY_NS


def partition_name(table: str, day: int) -> str:
    return f"{table}_{_EPOCH + dt.timedelta(days=day):%Y%m%d}"


def _day_of_name(name: str) -> int | None:
    match = _DAY_SUFFIX.search(name)
    if match is None:
        return None
    return (dt.datetime.strptime(match.group(1), "%Y%m%d").date() - _EPOCH).days


class Partitions:
    """What partitions exist (cached), and making and dropping them."""

    def __init__(self) -> None:
        self.days: dict[str, set[int]] = {}  # natively partitioned table -> days with a partition
        self.hypertables: set[str] = set()
        # Made inside a transaction not yet committed: known only once it is (settle).
        self._tentative: set[tuple[str, int]] = set()

    async def load(self, conn: Any) -> None:
        self.days, self.hypertables = {}, set()
        for record in await conn.fetch(_CHILDREN, [table.name for table in TABLES]):
            if not record["native"]:
                self.hypertables.add(record["name"])
                continue
            days = self.days.setdefault(record["name"], set())
            day = None if record["child"] is None else _day_of_name(record["child"])
            if day is not None:
                days.add(day)

    async def cover(self, conn: Any, table: Table, rows: list[Row]) -> None:
        """Creates the partitions `rows` need that do not exist yet."""
        known = self.days.get(table.name)
        if known is None:
            return
        index = table.time_index
        await self.cover_times(conn, table, [row[index] for row in rows])

    def covered(self, table: Table, times: list[int]) -> bool:
        """Whether rows of these event times need no partition made (no I/O: what is known)."""
        known = self.days.get(table.name)
        if known is None or not times:
            return True
        first, last = day_of(min(times)), day_of(max(times))
        return first == last and (first in known or not FIRST_DAY <= first <= LAST_DAY)

    async def cover_times(self, conn: Any, table: Table, times: list[int], attach: str | None = None) -> None:
        """Creates the partitions rows of these event times need that do not exist yet (`attach`:
        see `create`)."""
        if self.covered(table, times):
            return
        known = self.days[table.name]
        first, last = day_of(min(times)), day_of(max(times))
        needed = {day_of(ts) for ts in times} if first != last else {first}
        for day in sorted(needed - known):
            if FIRST_DAY <= day <= LAST_DAY and await self.create(conn, table, day, attach):
                log.info("recorder: created partition %s", partition_name(table.name, day))

    async def ensure_days(self, conn: Any, first_day: int, last_day: int) -> None:
        """Every native table gets a partition for each day of first_day..last_day, all in one
        transaction (called outside any of the caller's): one commit, where a transaction per
        partition made a recorder's start wait for the disk 52 times (13 tables, 4 days), one to
        two seconds on a busy machine."""
        wanted = [
            (table, day)
            for table in TABLES
            if (known := self.days.get(table.name)) is not None
            for day in range(first_day, last_day + 1)
            if day not in known
        ]
        created = []
        async with conn.transaction():
            for table, day in wanted:
                if await self._make(conn, table, day):
                    created.append(partition_name(table.name, day))
        for table, day in wanted:  # known once committed
            self.days[table.name].add(day)
        if created:
            first, last = partition_name("", first_day)[1:], partition_name("", last_day)[1:]
            log.info("recorder: created %d daily partitions (days %s..%s)", len(created), first, last)

    async def create(self, conn: Any, table: Table, day: int, attach: str | None = None) -> bool:
        """Makes the day's partition of `table`; False when it existed (another recorder made it).
        Inside a transaction of the caller's, it is known once the caller settles it. `attach`
        (a lock_timeout, e.g. "5s"; outside a transaction): made as a table, then attached, which
        locks `table` only against other changes of its partitions, not against writers (CREATE
        TABLE ... PARTITION OF waits for every transaction that wrote into it to end);
        LockNotAvailableError past that wait."""
        outer = conn.is_in_transaction()
        missing = await self._make(conn, table, day, attach)
        if outer:
            self._tentative.add((table.name, day))
        else:
            self.days[table.name].add(day)
        return missing

    async def _make(self, conn: Any, table: Table, day: int, attach: str | None = None) -> bool:
        """The day's partition of `table` made (True), or found made by another recorder."""
        name, low, high = partition_name(table.name, day), day * DAY_NS, (day + 1) * DAY_NS
        bounds = f"FOR VALUES FROM ({low}) TO ({high})"
        async with conn.transaction():
            if attach is not None:
                await conn.execute(f"SET LOCAL lock_timeout = '{attach}'")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            missing: bool = await conn.fetchval("SELECT to_regclass($1) IS NULL", name)
            if missing and attach is not None:
                await self._move_from_default(conn, table, name, bounds, (low, high))
            elif missing:
                try:
                    async with conn.transaction():
                        await conn.execute(f"CREATE TABLE {name} PARTITION OF {table.name} {bounds}")
                except asyncpg.CheckViolationError:
                    await self._move_from_default(conn, table, name, bounds, (low, high))
        return missing

    def settle(self, committed: bool) -> None:
        """The caller's transaction ended: what it created exists (committed) or not."""
        if committed:
            for table_name, day in self._tentative:
                self.days[table_name].add(day)
        self._tentative.clear()

    async def _move_from_default(
        self, conn: Any, table: Table, name: str, bounds: str, span: tuple[int, int]
    ) -> None:
        """The default partition holds rows of the day: they move into the day's new partition."""
        column = table.time_column
        await conn.execute(
            f"CREATE TABLE {name} (LIKE {table.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        moved = await conn.execute(
            f"""WITH moved AS (
                    DELETE FROM {table.name}_default WHERE {column} >= $1 AND {column} < $2 RETURNING *
                ) INSERT INTO {name} SELECT * FROM moved""",
            *span,
        )
        await conn.execute(f"ALTER TABLE {table.name} ATTACH PARTITION {name} {bounds}")
        if moved.split()[-1] != "0":
            log.warning(
                "recorder: moved %s rows of %s out of %s_default", moved.split()[-1], name, table.name
            )

    async def drop_before(self, conn: Any, cutoff_ns: int) -> list[str]:
        """Drops every partition (or chunk) wholly older than cutoff_ns; the dropped names."""
        dropped: list[str] = []
        for table in TABLES:
            if table.name in self.hypertables:
                chunks = await conn.fetch(
                    "SELECT drop_chunks($1::regclass, older_than => $2::bigint)", table.name, cutoff_ns
                )
                dropped += [str(record[0]) for record in chunks]
            elif table.name in self.days:
                dropped += await self._drop_days(conn, table, cutoff_ns)
        return dropped

    async def _drop_days(self, conn: Any, table: Table, cutoff_ns: int) -> list[str]:
        known = self.days[table.name]
        old = sorted(day for day in known if (day + 1) * DAY_NS <= cutoff_ns)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            for day in old:
                await conn.execute(f"DROP TABLE IF EXISTS {partition_name(table.name, day)}")
            # The default partition holds only out-of-range times: before 2000 is always old.
            await conn.execute(f"DELETE FROM {table.name}_default WHERE {table.time_column} < $1", cutoff_ns)
        known.difference_update(old)
        return [partition_name(table.name, day) for day in old]
