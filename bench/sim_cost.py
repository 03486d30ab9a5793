"""What a sim venue costs the machine: CPU seconds per start and per second of its life.

The suite starts the sim more than any other service (tests/cpu_report.py: 234 sim processes in a
fresh run), every `trademesh up` mesh runs one and so does `trademesh demo`. Here each sim is
`python -m trademesh.core.cli venue sim --port 0 --metrics-port 0 [--config C]`, started as the tests
start it, forked from a fork server that imported the third-party libraries once (tests/zygote.py),
or exec'd as `up` starts it (`--exec`). Per run:

- start: its CPU up to its serving line (imports, parsing, the venue's set-up, the server);
- idle: its CPU per second of life with no subscriber (after a settling second);
- subscribed: the same with one market-data subscriber (every symbol; book, trades, tickers,
  candles), read as fast as it comes;
- stop: its CPU from SIGTERM to its end.

Two configs: the tests' (tests/integration/support.py's with_test_step: 50 ms steps, 100 book
updates a second a symbol) and the product's defaults (no --config: 10 ms steps, 400).

With `--base DIR` (a checkout of the tree before, e.g. `git worktree add --detach /tmp/base HEAD`)
each round runs the sims of both trees, alternated, in one sitting: an A/B. Each tree's modules are
compiled once up front into a cache of the bench's own (PYTHONPYCACHEPREFIX), as `./dev test`
compiles them before a run. Medians of `--rounds` (>= 3) runs.

    .venv/bin/python bench/sim_cost.py --base /tmp/base --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from _common import (  # noqa: E402  (bench/, the script's own directory)
    SystemCpu,
    command_line,
    machine,
    median,
    now_iso,
    print_table,
    source_version,
    write_result,
)

from tests.integration.support import with_test_step  # noqa: E402
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN  # noqa: E402

_TOKEN, _TRADE_TOKEN = "bench-sim-cost-token", "bench-sim-cost-trade-token"
_METADATA = (("authorization", f"Bearer {_TOKEN}"),)
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_SERVING_TIMEOUT_S = 60.0
_SETTLE_S = 1.0


def _cpu_s(pid: int) -> float:
    """A live process's CPU (user + system) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


class _Tree:
    """A checkout whose sims are run: its own fork server, its own compiled modules."""

    def __init__(self, label: str, path: Path, cache: Path) -> None:
        self.label = label
        self.path = path
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**env, "PYTHONPATH": str(path), "PYTHONPYCACHEPREFIX": str(cache), TOKEN: _TOKEN,
                    TRADE_TOKEN: _TRADE_TOKEN}  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", "trademesh", "tests/zygote.py"],
            cwd=path, env=self.env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._zygote = subprocess.Popen(
            [sys.executable, "-m", "tests.zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, cwd=path, env=self.env,
        )  # fmt: skip
        theirs.close()
        self._socket = ours

    def start(self, args: list[str], forked: bool) -> _Sim:
        if not forked:
            process = subprocess.Popen(
                [sys.executable, "-m", "trademesh.core.cli", *args],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=self.path, env=self.env,
            )  # fmt: skip
            assert process.stdout is not None
            return _Sim(process.pid, process.stdout.fileno(), process, None)
        out_r, out_w = os.pipe()
        status_r, status_w = os.pipe()
        with open(os.devnull, "w") as null:
            request = {"module": "trademesh.core.cli", "args": args, "env": self.env, "cwd": str(self.path)}
            socket.send_fds(self._socket, [json.dumps(request).encode()], [out_w, null.fileno(), status_w])
        os.close(out_w)
        os.close(status_w)
        status = os.fdopen(status_r, "rb", buffering=0)
        pid = int(_line(status.fileno(), _SERVING_TIMEOUT_S))
        return _Sim(pid, out_r, None, status)

    def close(self) -> None:
        self._socket.close()
        self._zygote.wait(30)


def _line(fd: int, timeout_s: float) -> str:
    """The next line on a descriptor (read a byte at a time: the rest is the caller's)."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while not data.endswith(b"\n"):
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise TimeoutError(f"no line within {timeout_s} s (so far {data!r})")
        byte = os.read(fd, 1)
        if not byte:
            raise EOFError(f"ended before a line (so far {data!r})")
        data += byte
    return data.decode()


@dataclass
class _Sim:
    pid: int
    stdout: int
    process: subprocess.Popen[bytes] | None  # exec'd
    status: Any  # forked: the monitor's status pipe (its pid, then {"code", "cpu"})

    def serving(self) -> int:
        """Wait for the serving line; its port."""
        while True:
            line = _line(self.stdout, _SERVING_TIMEOUT_S)
            if '"serving"' in line:
                return int(json.loads(line)["port"])

    def stop(self) -> float:
        """SIGTERM; its whole CPU once it has ended."""
        os.kill(self.pid, signal.SIGTERM)
        if self.process is not None:
            _, _, usage = os.wait4(self.pid, 0)
            self.process.returncode = 0
            self.process.stdout.close()  # type: ignore[union-attr]
            return usage.ru_utime + usage.ru_stime
        line = _line(self.status.fileno(), 30.0)
        self.status.close()
        os.close(self.stdout)
        return float(json.loads(line)["cpu"])


class _Subscriber:
    """One Subscribe stream of every symbol, read in a thread as fast as it comes."""

    def __init__(self, port: int) -> None:
        import grpc

        from trademesh.marketdata.v1 import marketdata_pb2 as md
        from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = md_grpc.MarketDataStub(self._channel)
        listed = stub.ListInstruments(md.ListInstrumentsRequest(), metadata=_METADATA)
        symbols = [instrument.symbol for instrument in listed.instruments]
        request = md.SubscribeRequest(
            symbols=symbols,
            channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES, md.CHANNEL_TICKERS, md.CHANNEL_CANDLES],
        )
        self._call = stub.Subscribe(request, metadata=_METADATA)
        self.messages = 0
        self.first = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for _ in self._call:
                self.messages += 1
                self.first.set()
        except Exception:  # cancelled at close
            self.first.set()

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(10)
        self._channel.close()


def _rate(pid: int, seconds: float) -> float:
    """CPU s per second of the process over the next `seconds`."""
    c0, t0 = _cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_s(pid) - c0) / (time.monotonic() - t0)


def _args(config: Path | None) -> list[str]:
    args = ["venue", "sim", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
    return args if config is None else [*args, "--config", str(config)]


def _life(tree: _Tree, config: Path | None, window_s: float) -> dict[str, float]:
    sim = tree.start(_args(config), forked=True)
    try:
        port = sim.serving()
        start = _cpu_s(sim.pid)
        time.sleep(_SETTLE_S)
        idle = _rate(sim.pid, window_s)
        subscriber = _Subscriber(port)
        try:
            if not subscriber.first.wait(10):
                raise RuntimeError("the subscriber got nothing within 10 s")
            time.sleep(_SETTLE_S)
            subscribed = _rate(sim.pid, window_s)
        finally:
            subscriber.close()
        before_stop = _cpu_s(sim.pid)
    finally:
        total = sim.stop()
    return {"start": start, "idle": idle, "subscribed": subscribed, "stop": total - before_stop}


def _start_only(tree: _Tree, config: Path | None, forked: bool) -> dict[str, float]:
    sim = tree.start(_args(config), forked)
    try:
        sim.serving()
        start = _cpu_s(sim.pid)
    finally:
        total = sim.stop()
    return {"start": start, "stop": total - start}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", type=Path, help="a checkout of the tree before: an A/B against it")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind per tree (>= 3)")
    parser.add_argument("--starts", type=int, default=7, help="start-only runs per tree, mode and round")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of each CPU-rate window")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/sim_cost.json")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds: at least 3 (medians)")

    scratch = Path(tempfile.mkdtemp(prefix="trademesh-sim-cost-"))
    test_config = scratch / "test.toml"
    test_config.write_text(with_test_step(None))
    configs: dict[str, Path | None] = {"test": test_config, "default": None}
    trees = [_Tree("this", ROOT, scratch / "pyc")]
    if args.base is not None:
        trees.insert(0, _Tree("base", args.base.resolve(), scratch / "pyc"))
    runs: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    loads: list[float] = [os.getloadavg()[0]]
    system = SystemCpu()
    try:
        for round_ in range(args.rounds):
            for tree in trees if round_ % 2 == 0 else trees[::-1]:
                for name, config in configs.items():
                    runs.setdefault((tree.label, name, "life"), []).append(_life(tree, config, args.window))
                for mode, forked in (("fork", True), ("exec", False)):
                    for _ in range(max(1, args.starts // args.rounds)):
                        runs.setdefault((tree.label, "test", mode), []).append(
                            _start_only(tree, test_config, forked)
                        )
            loads.append(os.getloadavg()[0])
            print(f"round {round_ + 1}/{args.rounds} done (load {loads[-1]:.2f})", file=sys.stderr)
    finally:
        for tree in trees:
            tree.close()
    machine_cpu = system.percent()

    summary: dict[str, dict[str, float]] = {}
    rows = []
    for (label, config_name, kind), items in runs.items():
        medians = {key: median([item[key] for item in items]) for key in items[0]}
        summary[f"{label} {config_name} {kind}"] = {**medians, "runs": len(items)}
        rows.append([label, config_name, kind, len(items), *(medians.get(k, float("nan")) for k in
                     ("start", "stop", "idle", "subscribed"))])  # fmt: skip
    headers = [
        "tree",
        "config",
        "run",
        "n",
        "start CPU s",
        "stop CPU s",
        "idle CPU s/s",
        "subscribed CPU s/s",
    ]
    print_table(headers, [[*row[:4], *(f"{v:.4f}" for v in row[4:])] for row in rows])
    if args.base is not None:
        print("\nthis / base (medians):")
        for key, values in summary.items():
            if key.startswith("this "):
                base = summary.get("base " + key[5:], {})
                ratios = {k: v / base[k] for k, v in values.items() if k != "runs" and base.get(k)}
                print(f"  {key[5:]}: " + ", ".join(f"{k} {r:.2f}x" for k, r in ratios.items()))
    print(
        f"\nload {loads[0]:.2f} .. {max(loads):.2f}; machine CPU over the run {machine_cpu:.0f}% of one core"
    )
    if not args.no_save:
        path = write_result(
            "sim_cost",
            {"when": now_iso(), "command": command_line(), "machine": machine(), "source": source_version(),
             "load": loads, "machine_cpu_percent": machine_cpu, "medians": summary,
             "runs": {" ".join(key): items for key, items in runs.items()}},
        )  # fmt: skip
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
