"""Template exchange as ccxt.pro sees it, and what trademesh chooses from it.

Every static fact about the venue is here, readable at a glance: the ccxt class and the
options that pick its market type and stream names, the default symbols, the native symbol
format, what the venue supports (cancel-after, sandbox, private streams). Say why beside each
choice; docs/venues.md's tables repeat the facts for readers.
"""

from __future__ import annotations

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import InstrumentKind
from trademesh.venues._template.exchange import TemplateExchange
from trademesh.venues._template.sequence import TemplateBookSequence
from trademesh.venues.live.spec import LiveSpec, Market

__all__ = ["SPEC", "native_symbol"]


def native_symbol(market: Market) -> str:
    """How the venue names a market on its wire ("BTC-USDT", "XBT/USDT"...): the one place the
    native <-> canonical mapping is decided. Delete it when ccxt's market id is the wire name."""
    return str(market["id"])


SPEC = LiveSpec(
    name="template",  # the trademesh name: `trademesh venue template`, TRADEMESH_TEMPLATE_API_KEY
    ccxt_id="template",  # the ccxt.pro class, e.g. "okx"
    kind=InstrumentKind.SPOT,
    # The asset the exchange charges a spot fill's fee in (FeeAsset.QUOTE or RECEIVED): what
    # its paper venue charges. State it from the exchange's docs.
    spot_fee_asset=FeeAsset.QUOTE,
    default_symbols=("BTC/USDT",),  # canonical (ccxt unified) symbols
    standin="trademesh.venues._template.standin",  # imported only for --replay
    options={
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},  # one market type: one instruments call
    },
    native_symbol=native_symbol,
    ticker_method="watch_ticker",  # or "watch_bids_asks" when the venue streams best bid/ask apart
    # True when ccxt's cancel_all_orders_after arms a venue-side switch; say what it cancels (the
    # runtime keeps it off while a reduce-only order rests: docs/connector.md, "Dead-man switch").
    native_cancel_after=False,
    client_order_id_field="clientOrderId",  # the venue's own name for it (documentation)
    exchange_class=TemplateExchange,  # None (and no exchange.py) when ccxt.pro's class is enough
    sequence_check=TemplateBookSequence,  # None (and no sequence.py) when ccxt checks the book
    book_checksum=False,  # True when book frames carry a checksum the client verifies (exchange.py)
    private_streams=True,  # order updates and fills over the private WebSocket, with credentials
    # The ccxt params of a stop with this trigger, when the venue keeps stops as ordinary orders
    # triggered by the last trade (e.g. lambda trigger: {"triggerPrice": trigger}); None: the
    # runtime refuses stops and Inspector emulates them (docs/sim.md, "Stop orders").
    stop_params=None,
    # True when ccxt edit_order changes the venue's limit orders in place (AmendOrder native;
    # else the runtime cancels and replaces), and when ccxt watch_balance pushes the account
    # (StreamAccount ACCOUNT_FEED_PUSH; else polled): docs/sim.md, "Amending orders".
    amend_in_place=False,
    account_stream=False,
)
