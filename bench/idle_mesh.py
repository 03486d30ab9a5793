"""The mesh at rest: each service's CPU while the market barely moves (what a quiet market, and
every mesh the test suite starts, costs for nothing but timers, polls and heartbeats).

    .venv/bin/python bench/idle_mesh.py [--windows 3] [--window-s 60] [--settle-s 30]
    .venv/bin/python bench/idle_mesh.py --before /tmp/base --rounds 2   # before/after, alternated

`trademesh up --free-ports` on the machine's Redis (logical db --redis-db, claimed and flushed)
and a scratch PostgreSQL database, the sim playing the browser tests' quiet market (three symbols
at 5 trades/s and 10 book updates/s each, 50 ms steps: tests/e2e/studio_mesh.py) unless
--sim-config names another. Once every service is healthy and `--settle-s` has passed, each
service's CPU (user + system, /proc/<pid>/stat) is read over `--windows` windows of `--window-s`,
and the median of its windows is its figure, in % of one core. `postgresql` is the backends of
the mesh's database (their pids at both ends of a window); Redis is shared with whatever else
runs and not shown.

With `--before DIR` (a `git archive` of the commit to compare with, e.g.
`git archive <commit> | tar -x -C DIR`), each round runs the mesh from DIR first, then from this
tree (alternated: a noisy machine's drift falls on both), and the table shows both medians.
Writes bench/results/idle_mesh.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

ROOT = Path(__file__).resolve().parent.parent
_HEALTHY = "all services healthy"
_START_TIMEOUT_S = 240.0
_STOP_TIMEOUT_S = 60.0
_SYMBOLS = (("BTC/USDT", "65000", "0.01", "0.00001"), ("ETH/USDT", "3500", "0.01", "0.0001"),
            ("SOL/USDT", "150", "0.001", "0.01"))  # fmt: skip


def quiet_market(trades_per_s: float, book_updates_per_s: float) -> str:
    """The sim config of tests/integration/mesh.py's sim_config at these rates (a minute of history)."""
    parts = ["history_s = 60\ntick_interval_ms = 50\n"]
    for symbol, price, tick, lot in _SYMBOLS:
        parts.append(
            f'[[symbols]]\nsymbol = "{symbol}"\nstart_price = "{price}"\ntick_size = "{tick}"\n'
            f'lot_size = "{lot}"\ntrades_per_s = {trades_per_s}\nbook_updates_per_s = {book_updates_per_s}\n'
            "level_spacing_ticks = 20\nmaker_size_lots = 3000\ntaker_size_lots = 1000\n"
        )
    return "\n".join(parts)


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _services(log: str) -> dict[str, int]:
    """The `NAME serving on ADDRESS (pid N)` lines `up` prints: each service's pid."""
    found = {}
    for line in log.splitlines():
        if " serving on " in line and "(pid " in line:
            name = line.split("|", 1)[-1].split()[0]
            found[name] = int(line.rsplit("(pid ", 1)[1].split(")")[0])
    return found


async def _backends(database_url: str, name: str) -> set[int]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
        )
    finally:
        await connection.close()
    return {row["pid"] for row in rows}


class Mesh:
    """One `trademesh up` run, from `source` (None: this tree)."""

    def __init__(self, source: Path | None, sim_config: Path, redis_url: str, database_url: str) -> None:
        self.source = source
        self.directory = Path(tempfile.mkdtemp(prefix="trademesh-idle-"))
        self.log_path = self.directory / "up.log"
        env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=database_url)
        if source is not None:
            env["PYTHONPATH"] = f"{source}:{source / 'gen'}"
        command = [sys.executable, "-m", "trademesh.core.cli", "up", "--free-ports", "--status-every", "3600",
                   "--data-dir", str(self.directory / "data"), "--sim-config", str(sim_config)]  # fmt: skip
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=source or ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.pids: dict[str, int] = {}

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while _HEALTHY not in (text := self.log_path.read_text()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(
                    f"idle_mesh: the mesh did not start; its log: {self.log_path}\n{text[-3000:]}"
                )
            time.sleep(0.5)
        self.pids = _services(text) | {"up": self.process.pid}

    def stop(self) -> None:
        """SIGINT, as Ctrl-C; the whole session killed when it has not stopped in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def measure(
    mesh: Mesh, database_url: str, name: str, windows: int, window_s: float
) -> dict[str, list[float]]:
    """Each service's % of one core in each window (postgresql: the database's backends)."""
    shares: dict[str, list[float]] = {service: [] for service in [*mesh.pids, "postgresql"]}
    for _ in range(windows):
        backends = asyncio.run(_backends(database_url, name))
        pids = {**{s: {p} for s, p in mesh.pids.items()}, "postgresql": backends}
        before = {s: {p: _cpu_s(p) for p in ps} for s, ps in pids.items()}
        started = time.monotonic()
        time.sleep(window_s)
        elapsed = time.monotonic() - started
        for service, used in before.items():
            spent = 0.0
            for pid, cpu_s in used.items():
                now = _cpu_s(pid)
                if cpu_s is not None and now is not None:
                    spent += now - cpu_s
            shares[service].append(100 * spent / elapsed)
    return shares


async def _create_database(server_url: str) -> tuple[str, str]:
    """A new database of the mesh's own (dropped after its run): its URL and name."""
    name = f"idle_mesh_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return common.database_at(server_url, name), name


def run_once(args: argparse.Namespace, source: Path | None, sim_config: Path) -> dict[str, Any]:
    server_url = args.database_url
    redis_url = common.redis_db_url(args.redis_url, args.redis_db)
    redis.Redis.from_url(redis_url).flushdb()
    database_url, name = asyncio.run(_create_database(server_url))
    mesh = Mesh(source, sim_config, redis_url, database_url)
    try:
        mesh.wait_healthy()
        time.sleep(args.settle_s)
        load = os.getloadavg()[0]
        shares = measure(mesh, database_url, name, args.windows, args.window_s)
    finally:
        mesh.stop()
        asyncio.run(common.drop_database(server_url, name))
        redis.Redis.from_url(redis_url).flushdb()
    label = "this tree" if source is None else str(source)
    print(f"{label}: load {load:.2f} at the first window; log {mesh.log_path}")
    return {"source": label, "loadavg_1m": round(load, 2), "shares": shares}


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    every: dict[str, list[float]] = {}
    for run in runs:
        for service, shares in run["shares"].items():
            every.setdefault(service, []).extend(shares)
    return {service: common.median(shares) for service, shares in every.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=3, help="windows measured per mesh (default 3)")
    parser.add_argument("--window-s", type=float, default=60.0, help="seconds of a window (default 60)")
    parser.add_argument(
        "--settle-s", type=float, default=30.0, help="seconds after healthy before (default 30)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="meshes run (each variant, alternated)")
    parser.add_argument("--before", type=Path, help="a `git archive` of the commit to compare with")
    parser.add_argument("--sim-config", type=Path, help="the sim's config (default: the quiet market)")
    parser.add_argument("--trades-per-s", type=float, default=5.0, help="the quiet market's, per symbol")
    parser.add_argument(
        "--book-updates-per-s", type=float, default=10.0, help="the quiet market's, per symbol"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-db", type=int, default=12, help="claimed and flushed (default 12)")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for url, what in ((args.redis_url, "Redis"), (args.database_url, "PostgreSQL")):
        common.require_local(url, what, "idle_mesh")
    sim_config = args.sim_config
    if sim_config is None:
        sim_config = Path(tempfile.mkdtemp(prefix="trademesh-idle-")) / "quiet.toml"
        sim_config.write_text(quiet_market(args.trades_per_s, args.book_updates_per_s))
    started = common.now_iso()
    variants: list[Path | None] = [args.before.resolve(), None] if args.before else [None]
    runs: dict[str, list[dict[str, Any]]] = {}
    with common.claimed_redis_db(args.redis_db):
        for _ in range(args.rounds):
            for source in variants:
                run = run_once(args, source, sim_config)
                runs.setdefault(run["source"], []).append(run)
    medians = {label: _medians(done) for label, done in runs.items()}
    labels = list(medians)
    after = medians[labels[-1]]
    services = sorted(after, key=lambda s: -after[s])
    rows = [[s, *(medians[label].get(s, float("nan")) for label in labels)] for s in services]
    rows.append(["total", *(sum(medians[label].values()) for label in labels)])
    print()
    common.print_table(["service", *(f"% core ({label})" for label in labels)], rows)
    payload = {
        "bench": "idle_mesh",
        "started": started,
        "command": common.command_line(),
        "machine": common.machine(),
        "sim_config": sim_config.read_text(),
        "windows": args.windows,
        "window_s": args.window_s,
        "settle_s": args.settle_s,
        "medians_percent_of_a_core": medians,
        "runs": runs,
    }
    print(f"\nwrote {common.write_result('idle_mesh', payload)}")


if __name__ == "__main__":
    main()
