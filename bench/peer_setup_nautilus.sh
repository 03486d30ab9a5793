#!/bin/sh
# The highest peer's environment for bench/backtest_peer.py: NautilusTrader from PyPI, in a virtualenv
# of its own (bench/.peer-nautilus-venv, gitignored), never in the project's dependencies. The bench
# runs it as a child process (bench/peer_nautilus.py) and reads its figures back.
#   sh bench/peer_setup_nautilus.sh [nautilus_trader version]   (default: 1.221.0, a cp311 wheel)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.peer-nautilus-venv"
version="${1:-1.221.0}"
python="${PYTHON311:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "nautilus_trader==$version"
"$venv/bin/python" -c "import importlib.metadata as m, sys; print('nautilus_trader', m.version('nautilus_trader'), sys.version.split()[0])"
