"""A live venue's markets: loading them (with retries), choosing the symbols to run, instruments.

Contract fields (proto/trademesh/common/v1/common.proto, Instrument): contract_size is base
units per unit of size ("0" for an inverse contract); contract_value and its asset say what
one unit of size is worth: the base amount for spot, linear contracts and options, the face
value in the quote asset for inverse ones (per contract on OKX; 1 USD on Deribit, whose
inverse sizes are USD amounts: LiveSpec.inverse_sized_in_quote).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ccxt.pro

from trademesh.core.domain.model import Instrument
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.errors import InvalidArgument, Unavailable
from trademesh.venues.live.config import LiveConfig
from trademesh.venues.live.convert import safe_message
from trademesh.venues.live.normalize import decimal_or_zero, decimal_text
from trademesh.venues.live.spec import LiveSpec, Market
from trademesh.venues.live.trading import retry_after

__all__ = ["choose_symbols", "contract_terms", "instrument_of", "load_markets"]

log = logging.getLogger(__name__)

_LOAD_ATTEMPTS = 6


async def load_markets(exchange: Any, name: str, backoff: Backoff) -> None:
    """ccxt's load_markets, retried on network errors and rate limits; a refusal is final."""
    for attempt in range(_LOAD_ATTEMPTS):
        try:
            await exchange.load_markets()
            return
        except ccxt.ExchangeError as exc:  # the venue refused: retrying will not help
            raise Unavailable(f"{name}: cannot load markets: {safe_message(exc, [])}") from exc
        except ccxt.NetworkError as exc:
            if attempt == _LOAD_ATTEMPTS - 1:
                raise Unavailable(f"{name}: cannot load markets: {safe_message(exc, [])}") from exc
            limited = isinstance(exc, ccxt.DDoSProtection)
            delay = (retry_after(exchange) if limited else None) or backoff.next()
            log.warning(
                "%s: loading markets failed (%s); retrying in %.1f s", name, safe_message(exc, []), delay
            )
            await asyncio.sleep(delay)


def choose_symbols(
    spec: LiveSpec, config: LiveConfig, markets: dict[str, Market], replayed: Sequence[str] | None
) -> list[str]:
    """The config's symbols; else a replay's own markets (by native name); else the spec's defaults."""
    if config.symbols:
        wanted = list(config.symbols)
    elif replayed is not None:
        by_native = {spec.native_symbol(m): m["symbol"] for m in markets.values()}
        wanted = [by_native[n] for n in replayed if n in by_native]
    else:
        wanted = list(spec.default_symbols)
    unknown = [s for s in wanted if s not in markets]
    if unknown:
        raise InvalidArgument.field("symbols", f"{spec.name} has no market {', '.join(unknown)}")
    return wanted


def contract_terms(spec: LiveSpec, market: Market) -> tuple[Decimal, Decimal, str]:
    """(contract_size, contract_value, contract_value_asset) of a ccxt market.

    ccxt's contractSize is the base amount of a linear contract but the quote value (USD) of
    an inverse one (ccxt marks it `inverse`). Options are sized in the base asset whatever
    they settle in (ccxt calls Deribit's BTC-settled options inverse too).
    """
    size = decimal_or_zero(market.get("contractSize") or 1)
    if not market.get("inverse") or market.get("option"):
        return size, size, market["base"]
    value = Decimal(1) if spec.inverse_sized_in_quote else size
    return Decimal(0), value, market["quote"]


def instrument_of(spec: LiveSpec, market: Market) -> Instrument:
    precision, limits = market.get("precision") or {}, market.get("limits") or {}
    d = decimal_or_zero
    contract_size, contract_value, value_asset = contract_terms(spec, market)
    return Instrument(
        venue=spec.name,
        symbol=market["symbol"],
        native_symbol=spec.native_symbol(market),
        kind=spec.kind,
        base_asset=market["base"],
        quote_asset=market["quote"],
        settle_asset=market.get("settle") or market["quote"],
        tick_size=d(precision.get("price")),
        lot_size=d(precision.get("amount")),
        min_size=d((limits.get("amount") or {}).get("min")),
        min_notional=d((limits.get("cost") or {}).get("min")),
        contract_size=contract_size,
        active=market.get("active") is not False,
        contract_value=contract_value,
        contract_value_asset=value_asset,
        maker_fee_rate=_fee_rate(market.get("maker")),
        taker_fee_rate=_fee_rate(market.get("taker")),
    )


def _fee_rate(value: Any) -> Decimal | None:
    """A ccxt market's fee rate (its exchange's base tier, as ccxt describes it); None when absent."""
    text = decimal_text(value)
    return Decimal(text) if text else None
