"""cryptofeed's Binance feed into its Redis Streams backend, against a local stand-in: the peer side of
bench/market_data_peer.py. Run by the peer's own interpreter (bench/.peer-venv, made by
bench/peer_setup.sh), never by the project's: cryptofeed is not a project dependency.

    bench/.peer-venv/bin/python bench/peer_cryptofeed.py --standin http://127.0.0.1:PORT \
        --redis-db 12 --symbols NKN-USDT,BLZ-ETH,LRC-BTC,RUNE-EUR --log feedhandler.log

cryptofeed itself is used unmodified: only the feed's address constants (its class attributes
`websocket_endpoints` and `rest_endpoints`) are pointed at the stand-in, which serves every
exchange host under its own first path segment (venues/replay/server.py). Prints "ready" once the
symbols are loaded (the caller's CPU baseline), then runs until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cryptofeed import FeedHandler, connection  # type: ignore[import-not-found]
from cryptofeed.backends.redis import (  # type: ignore[import-not-found]
    BookStream,
    CandlesStream,
    TickerStream,
    TradeStream,
)
from cryptofeed.connection import RestEndpoint, WebsocketEndpoint  # type: ignore[import-not-found]
from cryptofeed.defines import CANDLES, L2_BOOK, TICKER, TRADES  # type: ignore[import-not-found]
from cryptofeed.exchanges import Binance  # type: ignore[import-not-found]


def point_at(standin: str) -> None:
    """Binance's hosts as the stand-in serves them: ws://127.0.0.1:PORT/stream.binance.com:9443/...

    cryptofeed accepts only wss:// addresses; the stand-in speaks plain ws:// (as to trademesh's
    ccxt), so the feed is given wss://127.0.0.1... and the websockets `connect` its connections
    call is wrapped to open that address as ws://."""
    wss = standin.replace("http://", "wss://", 1)
    Binance.websocket_endpoints = [WebsocketEndpoint(f"{wss}/stream.binance.com:9443")]
    plain_from = wss.split("/", 3)[2]  # 127.0.0.1:PORT
    opened = connection.connect

    def connect(address: str, **kwargs: Any) -> Any:
        if address.startswith(f"wss://{plain_from}/"):
            address = "ws://" + address.removeprefix("wss://")
        return opened(address, **kwargs)

    connection.connect = connect
    routes = Binance.rest_endpoints[0].routes
    Binance.rest_endpoints = [RestEndpoint(f"{standin}/api.binance.com", routes=routes)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--standin", required=True, help="the stand-in's base url (http://127.0.0.1:PORT)")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--symbols", required=True, help="cryptofeed symbols, comma separated")
    parser.add_argument("--log", default="feedhandler.log")
    args = parser.parse_args()
    point_at(args.standin)
    # The backend builds redis://host:port; the port's text carries the database number.
    redis = {"host": args.redis_host, "port": f"{args.redis_port}/{args.redis_db}"}
    handler = FeedHandler(config={"uvloop": True, "log": {"filename": args.log, "level": "WARNING"}})
    handler.add_feed(
        Binance(
            symbols=args.symbols.split(","),
            channels=[TRADES, TICKER, L2_BOOK, CANDLES],
            callbacks={
                TRADES: TradeStream(**redis),
                TICKER: TickerStream(**redis),
                L2_BOOK: BookStream(**redis),
                CANDLES: CandlesStream(**redis),
            },
        )
    )
    # uvloop 0.23 no longer makes a loop on get_event_loop(), which FeedHandler.run calls.
    asyncio.set_event_loop(asyncio.new_event_loop())
    print("ready", flush=True)
    handler.run()


if __name__ == "__main__":
    main()
