#!/bin/sh
# A peer's environment, from PyPI, in a virtualenv of its own (gitignored), never in the project's
# dependencies; the benches run the peer there as a child process and read its figures back.
#   sh bench/peer_setup.sh [cryptofeed|nautilus] [version]
#     cryptofeed (the default): for bench/market_data_peer.py, in bench/.peer-venv;
#       2.4.1 by default, the newest on Python 3.11
#     nautilus: NautilusTrader for bench/backtest_peer.py, in bench/.peer-nautilus-venv;
#       1.221.0 by default, a cp311 wheel
set -eu
here=$(cd "$(dirname "$0")" && pwd)
peer="${1:-cryptofeed}"
case "$peer" in
    cryptofeed) venv="$here/.peer-venv" package="cryptofeed" extra="[redis]" version="${2:-2.4.1}" ;;
    nautilus) venv="$here/.peer-nautilus-venv" package="nautilus_trader" extra="" version="${2:-1.221.0}" ;;
    *) echo "peer_setup.sh: no peer '$peer': cryptofeed or nautilus" >&2; exit 2 ;;
esac
python="${PYTHON311:-python3.11}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$package$extra==$version"
"$venv/bin/python" -c "import importlib.metadata as m, sys; print('$package', m.version('$package'), sys.version.split()[0])"
