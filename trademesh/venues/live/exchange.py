"""Build a venue's ccxt.pro client: options, credentials, sandbox, replay urls, message hooks.

These hooks make the connector exact and robust:
- `on_message` runs after ccxt has handled each venue frame, so the connector
  reads ccxt's caches once per exchange message, even when ccxt drains a burst of
  buffered frames without yielding (the events read are sent once the burst is over);
- `on_resolve` sees every structure ccxt hands its watchers, so the connector knows which
  books changed without diffing every book on every message;
- `on_frame` sees each frame before ccxt does (venue sequence checks ccxt lacks);
- `on_watch` sees the connection every watch call is made on (a stream is connected
  once its connection is open, whether or not an event has come yet);
- `on_rest_book` sees every REST book snapshot ccxt starts a WebSocket book from, with
  the depth it asked for (such a book is only known down to the snapshot's last level);
- a frame that ccxt cannot parse or handle is reported through `on_malformed`
  instead of ending ccxt's receive loop (which would silently stall the stream);
- the order books ccxt creates record which levels each update touched (tracked_book), so
  the book normalizer re-reads those levels instead of diffing whole books;
- a connection's frames are read by one task for its life (`_read_frames`), not by a new
  task each frame as ccxt's receive loop does (the same steps, a third of the cost a frame).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro
from ccxt.async_support.base.ws.client import MSG_SIZE_OVERHEAD

from trademesh.core.platform.config.env import VENUE_CREDENTIALS, VENUE_SANDBOX, read_secret, venue_variable
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.live.tracked_book import TrackedBooks

__all__ = ["Hooks", "create_exchange", "has_credentials", "rewrite_urls", "venue_url"]

log = logging.getLogger(__name__)


def _accept(client: Any, message: Any) -> bool:
    return True


def _ignore(*args: Any) -> None:
    return None


class Hooks:
    def __init__(
        self,
        on_message: Callable[[], None],
        on_malformed: Callable[[Exception], None],
        on_frame: Callable[[Any, Any], bool] = _accept,
        on_resolve: Callable[[Any], None] = _ignore,
        on_watch: Callable[[Any], None] = _ignore,
        on_rest_book: Callable[[str, Any, int | None], None] = _ignore,
    ) -> None:
        self.on_message = on_message
        self.on_malformed = on_malformed
        self.on_frame = on_frame  # False: the frame is dropped before ccxt sees it
        self.on_resolve = on_resolve  # ccxt hands a structure to its watchers: it has changed
        self.on_watch = on_watch  # (ccxt client) a watch call was made on this connection
        self.on_rest_book = on_rest_book  # (symbol, book, depth asked) a book's REST snapshot


def _hooked_class(base: type[Any], hooks: Hooks) -> type[Any]:
    class Hooked(TrackedBooks, base):  # type: ignore[misc]
        def handle_message(self, client: Any, message: Any) -> Any:
            if not hooks.on_frame(client, message):
                return None
            try:
                result = super().handle_message(client, message)
            except Exception as exc:  # a frame the venue's handler choked on
                hooks.on_malformed(exc)
                return None
            hooks.on_message()
            return result

        def client(self, url: str) -> Any:
            client = super().client(url)
            if not getattr(client, "_trademesh_guarded", False):
                _guard_parsing(client, hooks)
            return client

        def watch(self, url: str, *args: Any, **kwargs: Any) -> Any:
            future = super().watch(url, *args, **kwargs)
            hooks.on_watch(self.clients.get(url))
            return future

        def watch_multiple(self, url: str, *args: Any, **kwargs: Any) -> Any:
            future = super().watch_multiple(url, *args, **kwargs)
            hooks.on_watch(self.clients.get(url))
            return future

        async def fetch_rest_order_book_safe(
            self, symbol: str, limit: int | None = None, params: dict[str, Any] | None = None
        ) -> Any:
            book = await super().fetch_rest_order_book_safe(symbol, limit, params or {})
            if book is not None:
                hooks.on_rest_book(symbol, book, limit)
            return book

    Hooked.__name__ = f"Hooked{base.__name__}"
    return Hooked


def _guard_parsing(client: Any, hooks: Hooks) -> None:
    parse = client.handle_text_or_binary_message

    def guarded(data: Any) -> None:
        try:
            parse(data)
        except Exception as exc:  # not JSON, or ccxt failed before reaching the handler
            hooks.on_malformed(exc)

    resolve = client.resolve

    def resolved(result: Any, message_hash: Any) -> Any:
        hooks.on_resolve(result)
        return resolve(result, message_hash)

    client.handle_text_or_binary_message = guarded
    client.resolve = resolved
    client.receive_loop = lambda: _start_reading(client)
    client._trademesh_guarded = True


def _start_reading(client: Any) -> None:
    """In place of ccxt's receive_loop (called once the connection is open)."""
    if client.closed():
        client.on_close(1006)
        return
    # the loop holds its tasks weakly: the client holds its reader
    client._trademesh_reader = client.asyncio_loop.create_task(_read_frames(client))


async def _read_frames(client: Any) -> None:
    """ccxt's receive loop (Client.receive_loop) in one task: each turn drains the frames aiohttp
    has buffered but one (their sizes given back to its queue as ccxt does), then receives the
    next and handles it; a failed receive rejects the client's futures and ends the loop, a
    closed connection ends it with on_close(1006)."""
    while not client.closed():
        if client.buffer and len(client.buffer) > 1:
            size_delta = 0
            while len(client.buffer) > 1:
                message, size = client.buffer.popleft()
                size_delta += size + MSG_SIZE_OVERHEAD
                client.handle_message(message)
            client.buffer[0] = (client.buffer[0][0], client.buffer[0][1] + size_delta)
        try:
            message = await client.receive()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # as ccxt's loop: its futures rejected, reading over
            client.reject(ccxt.NetworkError(str(exc)))
            return
        client.handle_message(message)
    client.on_close(1006)


def has_credentials(spec: LiveSpec) -> bool:
    return read_secret(venue_variable(spec.name, "API_KEY")) is not None


def create_exchange(
    spec: LiveSpec,
    hooks: Hooks,
    sandbox: bool,
    replay_url: str | None,
    timeout_s: float = 10.0,
    throttled: bool = True,
) -> Any:
    """`throttled`: ccxt paces its requests and subscriptions to keep within the venue's rate
    limits (off only against the in-process replay stand-in, which has none)."""
    options: dict[str, Any] = dict(spec.options)
    # A failed snapshot fetch surfaces at once, so our loop backs off honouring Retry-After
    # (ccxt's own retries would hit a rate-limited venue again immediately).
    options["watchOrderBook"] = {"maxRetries": 1, **options.get("watchOrderBook", {})}
    config: dict[str, Any] = {
        "enableRateLimit": throttled,
        "timeout": int(timeout_s * 1000),
        "options": options,
    }
    for field, attribute in VENUE_CREDENTIALS.items():
        value = read_secret(venue_variable(spec.name, field))
        if value is not None:
            config[attribute] = value
    base = spec.exchange_class or getattr(ccxt.pro, spec.ccxt_id)
    exchange = _hooked_class(base, hooks)(config)
    if replay_url is not None:
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], replay_url)
        _errors_by_venue_url(exchange, replay_url)
    elif sandbox or os.environ.get(venue_variable(spec.name, VENUE_SANDBOX)) == "1":
        if not spec.has_sandbox:
            raise InvalidArgument.field("sandbox", f"{spec.name} has no sandbox or testnet")
        exchange.set_sandbox_mode(True)
    return exchange


def rewrite_urls(urls: Any, base: str) -> Any:
    """Point every https/wss url at `base`, keeping the host as the first path segment."""
    if isinstance(urls, dict):
        return {key: rewrite_urls(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("https://", "wss://", "http://", "ws://")):
        parts = urlsplit(urls)
        scheme = "ws" if parts.scheme.startswith("ws") else "http"
        host = base.split("://", 1)[1]
        rest = urls.split("://", 1)[1]
        return f"{scheme}://{host}/{rest}" if parts.netloc else urls
    return urls


def venue_url(url: str, base: str) -> str:
    """The venue's own url of one that rewrite_urls pointed at `base` (any other url as it is)."""
    prefix = f"http://{base.split('://', 1)[1]}/"
    return "https://" + url.removeprefix(prefix) if url.startswith(prefix) else url


def _errors_by_venue_url(exchange: Any, base: str) -> None:
    """Where ccxt picks a venue's error classes by the request's host (Binance: a code means
    one thing on fapi, another on api), it reads the venue's url, not the stand-in's."""
    by_url = getattr(exchange, "get_exceptions_by_url", None)
    if by_url is None:
        return

    def classes(url: str | None, kind: str) -> Any:
        return by_url(None if url is None else venue_url(url, base), kind)

    exchange.get_exceptions_by_url = classes
