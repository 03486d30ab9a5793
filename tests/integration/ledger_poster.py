"""A process that posts batches of ledger chains in a loop, for test_ledger_store's crash test
(the test kills it with SIGKILL in the middle of a batch) and bench/ledger_post.py's rows.

    python -m tests.integration.ledger_poster URL BATCHES CHAINS_PER_BATCH

Batch n holds chains n*CHAINS .. (n+1)*CHAINS-1 (`batch`): the same events every time, so a
test can post them again. Before each batch it prints {"posting": n}, after it {"posted": n}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal

from trademesh.core.ledger.engine.model import (
    Account,
    AccountFlag,
    AccountKey,
    Chain,
    LedgerId,
    Links,
    Transfer,
)
from trademesh.core.ledger.engine.model import transfer_id as _transfer_id
from trademesh.core.ledger.store import LedgerStore

__all__ = ["ACCOUNTS", "FUNDING", "batch", "chain"]

VENUE = "sim"
TS0_NS = 1_790_000_000_000_000_000
# Per strategy: a funded cash account (credit-normal: debits never exceed credits), a fee
# account and a position account; each chain pays a fee out of cash (debits cash) and moves a
# position: 2 transfers on 2 ledgers.
FUNDING = Account(AccountKey(LedgerId.CASH, 100, VENUE, "USDT", ""), AccountFlag.NONE)
_STRATEGIES = 8
ACCOUNTS = {
    "cash": [
        Account(
            AccountKey(LedgerId.CASH, 1, VENUE, "USDT", f"s{n}"), AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS
        )
        for n in range(_STRATEGIES)
    ],
    "fees": [Account(AccountKey(LedgerId.CASH, 30, VENUE, "USDT", f"s{n}")) for n in range(_STRATEGIES)],
    "position": [
        Account(AccountKey(LedgerId.POSITION, 2, VENUE, "BTC", f"s{n}")) for n in range(_STRATEGIES)
    ],
    "position_venue": [Account(AccountKey(LedgerId.POSITION, 20, VENUE, "BTC", ""))],
}


def funding_chain(amount: Decimal = Decimal("1000000000")) -> Chain:
    """Credits every strategy's cash account `amount` USDT from the funding account."""
    event = "funding"
    transfers = tuple(
        Transfer(
            _transfer_id(event, n),
            FUNDING.id,
            cash.id,
            amount,
            LedgerId.CASH,
            1,
            "USDT",
            TS0_NS,
            Links(event),
        )
        for n, cash in enumerate(ACCOUNTS["cash"])
    )
    return Chain(event, TS0_NS, transfers, (FUNDING, *ACCOUNTS["cash"]))


def chain(n: int) -> Chain:
    """Event n: strategy n % 8 pays a fee of 0.0n USDT and buys 0.001 BTC (2 transfers)."""
    event = f"fill-{n}"
    s = n % _STRATEGIES
    cash, fees = ACCOUNTS["cash"][s], ACCOUNTS["fees"][s]
    position, venue = ACCOUNTS["position"][s], ACCOUNTS["position_venue"][0]
    ts = TS0_NS + 1000 + n
    links = Links(
        event, f"f{n}", f"o{n // 2}", f"c{n // 2}", f"i{n // 4}", f"d{n // 4}", f"g{n // 8}", f"s{s}"
    )
    fee = Transfer(
        _transfer_id(event, 0),
        cash.id,
        fees.id,
        Decimal(n % 97 + 1) / 100,
        LedgerId.CASH,
        3,
        "USDT",
        ts,
        links,
    )
    moved = Transfer(
        _transfer_id(event, 1),
        position.id,
        venue.id,
        Decimal("0.001"),
        LedgerId.POSITION,
        2,
        "BTC",
        ts,
        links,
    )
    return Chain(event, ts, (fee, moved), (cash, fees, position, venue))


def batch(n: int, chains: int) -> list[Chain]:
    return [chain(i) for i in range(n * chains, (n + 1) * chains)]


async def _main(url: str, batches: int, chains: int) -> None:
    store = await LedgerStore.open(url)
    try:
        await store.post([funding_chain()])
        for n in range(batches):
            print(json.dumps({"posting": n}), flush=True)
            result = await store.post(batch(n, chains))
            assert not result.refused, result.refused
            print(json.dumps({"posted": n}), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
