"""A one-shot command for tests/integration/test_forked_services.py (`python -m` this, as the CLI
is run): what it prints and how it ends are chosen by its arguments.

    say CODE      its arguments, $PROBE and its working directory on stdout, a line on stderr
                  (one ending in CR LF on each), then exit CODE
    flood BYTES   BYTES on stdout and on stderr, interleaved, then exit 0 (more than a pipe holds)
    message       exit with a message (SystemExit("..."): code 1, the message on stderr)
    signal        end by its own SIGTERM
    hang          its pid on stdout, then wait for a signal (a command that never ends)
"""

from __future__ import annotations

import json
import os
import signal
import sys

__all__: list[str] = []


def main(argv: list[str]) -> int:
    match argv:
        case ["say", code, *_]:
            print(json.dumps({"argv": argv, "probe": os.environ.get("PROBE"), "cwd": os.getcwd()}))
            print("out with CR LF", end="\r\n")
            print("said on stderr", file=sys.stderr)
            print("err with CR LF", end="\r\n", file=sys.stderr)
            return int(code)
        case ["flood", size]:
            chunk = "x" * 1023 + "\n"
            for _ in range(int(size) // len(chunk)):
                sys.stdout.write(chunk)
                sys.stderr.write(chunk)
            return 0
        case ["message"]:
            sys.exit("the probe refuses")
        case ["signal"]:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()  # SIGTERM's default action ends it here
        case ["hang"]:
            print(os.getpid(), flush=True)
            signal.pause()
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
