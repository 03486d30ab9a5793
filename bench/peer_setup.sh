#!/bin/sh
# The peer's environment for bench/market_data_peer.py: cryptofeed from PyPI, in a virtualenv of
# its own (bench/.peer-venv, gitignored), never in the project's dependencies.
#   sh bench/peer_setup.sh [cryptofeed version]     (default: 2.4.1, the newest on Python 3.11)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.peer-venv"
version="${1:-2.4.1}"
python="${PYTHON311:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "cryptofeed[redis]==$version"
"$venv/bin/python" -c "import importlib.metadata as m, sys; print('cryptofeed', m.version('cryptofeed'), sys.version.split()[0])"
