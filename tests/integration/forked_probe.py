"""A service for tests/integration/test_forked_services.py: prints a serving line with what it
was started with (an environment variable, its working directory, its arguments), says on stderr
when its atexit hook runs, and serves until SIGTERM (exit 0) or exits at once with the code given."""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import time

__all__: list[str] = []


def main(argv: list[str]) -> int:
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    atexit.register(lambda: print("probe atexit ran", file=sys.stderr, flush=True))
    line = {
        "event": "serving",
        "port": 0,
        "host": "-",
        "probe": os.environ.get("PROBE", ""),
        "cwd": os.getcwd(),
    }
    print(json.dumps({**line, "argv": argv}), flush=True)
    if argv and argv[0] == "exit":
        return int(argv[1])
    while not stop:
        time.sleep(0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
