"""cryptofeed's feed for a venue (Binance, Kraken) into its Redis Streams backend, against a local
stand-in: the peer side of bench/market_data_peer.py. Run by the peer's own interpreter
(bench/.peer-venv, made by bench/peer_setup.sh), never by the project's: cryptofeed is not a
project dependency.

    bench/.peer-venv/bin/python bench/peer_cryptofeed.py --standin http://127.0.0.1:PORT \
        --redis-db 12 --venue binance --symbols NKN-USDT,BLZ-ETH,LRC-BTC,RUNE-EUR \
        --channels trades,ticker,l2_book,candles --log feedhandler.log

cryptofeed itself is used unmodified: only the feed's address constants (its class attributes
`websocket_endpoints` and `rest_endpoints`) are pointed at the stand-in, which serves every
exchange host under its own first path segment (trademesh/venues/replay/server.py). Prints "ready" once the
symbols are loaded (the caller's CPU baseline), then runs until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from typing import Any

from cryptofeed import FeedHandler, connection  # type: ignore[import-not-found]
from cryptofeed.backends.redis import (  # type: ignore[import-not-found]
    BookStream,
    CandlesStream,
    TickerStream,
    TradeStream,
)
from cryptofeed.defines import CANDLES, L2_BOOK, TICKER, TRADES  # type: ignore[import-not-found]
from cryptofeed.exchanges import Binance, Kraken  # type: ignore[import-not-found]

FEEDS = {"binance": Binance, "kraken": Kraken}
CHANNELS = {"trades": TRADES, "ticker": TICKER, "l2_book": L2_BOOK, "candles": CANDLES}
BACKENDS = {TRADES: TradeStream, TICKER: TickerStream, L2_BOOK: BookStream, CANDLES: CandlesStream}


def _under(base: str, address: str) -> str:
    """An exchange address as the stand-in serves it: wss://ws.kraken.com -> BASE/ws.kraken.com."""
    return f"{base}/{address.split('://', 1)[1]}"


def point_at(feed: Any, standin: str) -> None:
    """The feed's hosts as the stand-in serves them, e.g. ws://127.0.0.1:PORT/ws.kraken.com (each
    endpoint otherwise as the feed declares it: its per-connection subscription limit, routes).

    cryptofeed accepts only wss:// addresses; the stand-in speaks plain ws:// (as to trademesh's
    ccxt), so the feed is given wss://127.0.0.1... and the websockets `connect` its connections
    call is wrapped to open that address as ws://."""
    wss = standin.replace("http://", "wss://", 1)
    feed.websocket_endpoints = [
        dataclasses.replace(e, address=_under(wss, e.address)) for e in feed.websocket_endpoints
    ]
    feed.rest_endpoints = [
        dataclasses.replace(e, address=_under(standin, e.address)) for e in feed.rest_endpoints
    ]
    plain_from = wss.split("/", 3)[2]  # 127.0.0.1:PORT
    opened = connection.connect

    def connect(address: str, **kwargs: Any) -> Any:
        if address.startswith(f"wss://{plain_from}/"):
            address = "ws://" + address.removeprefix("wss://")
        return opened(address, **kwargs)

    connection.connect = connect


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--standin", required=True, help="the stand-in's base url (http://127.0.0.1:PORT)")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--venue", choices=sorted(FEEDS), default="binance")
    parser.add_argument("--symbols", required=True, help="cryptofeed symbols, comma separated")
    parser.add_argument("--channels", default="trades,ticker,l2_book,candles", help=", ".join(CHANNELS))
    parser.add_argument(
        "--checksums", action="store_true", help="the feed checks book checksums (its checksum_validation)"
    )
    parser.add_argument("--log", default="feedhandler.log")
    args = parser.parse_args()
    feed = FEEDS[args.venue]
    point_at(feed, args.standin)
    channels = [CHANNELS[name] for name in args.channels.split(",")]
    # The backend builds redis://host:port; the port's text carries the database number.
    redis = {"host": args.redis_host, "port": f"{args.redis_port}/{args.redis_db}"}
    handler = FeedHandler(config={"uvloop": True, "log": {"filename": args.log, "level": "WARNING"}})
    handler.add_feed(
        feed(
            symbols=args.symbols.split(","),
            channels=channels,
            callbacks={channel: BACKENDS[channel](**redis) for channel in channels},
            checksum_validation=args.checksums,
        )
    )
    # uvloop 0.23 no longer makes a loop on get_event_loop(), which FeedHandler.run calls.
    asyncio.set_event_loop(asyncio.new_event_loop())
    print("ready", flush=True)
    handler.run()


if __name__ == "__main__":
    main()
