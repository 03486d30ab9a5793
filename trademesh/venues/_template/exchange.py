"""ccxt.pro's template client, mended where it falls short of what the connector needs.

One bullet per mend, saying what ccxt (name its version) does, why the connector cannot live
with it, and what the override does instead. Typical mends: an order answer that carries only
ids is read back; fetching by client order id; a private stream ccxt parses incompletely.
Delete this file (and `exchange_class` in spec.py) when ccxt.pro's class is enough.
"""

from __future__ import annotations

import ccxt.pro

__all__ = ["TemplateExchange"]


class TemplateExchange(ccxt.pro.Exchange):  # type: ignore[misc]  # the venue's class, e.g. ccxt.pro.okx
    pass
