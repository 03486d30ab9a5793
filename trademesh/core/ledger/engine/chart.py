"""The chart of accounts: every account code of the six ledgers, its normal side and flags, and
the keys the posting rules use (docs/ledger.md, "Chart of accounts").

Ledger 1 (cash) is the venue's money, per venue and asset. Ledgers 2-6 break the same events
down per instrument and strategy (positions, fees, realised PnL, margin, funding); each is a
closed book whose other side is its per-venue control account (code x09). A transfer never
leaves its ledger and asset, so every ledger balances on its own.
"""

from __future__ import annotations

import enum
import functools

from trademesh.core.ledger.engine.model import AccountFlag, AccountKey, LedgerId

__all__ = [
    "CODE_FLAGS",
    "CODE_LEDGER",
    "CODE_NAMES",
    "QUANTITY_CODES",
    "AccountCode",
    "TransferCode",
    "cash_fees",
    "cash_funding",
    "cash_margin",
    "equity",
    "fees_control",
    "fees_paid",
    "funding_control",
    "funding_pnl",
    "liquidation_fees",
    "margin_control",
    "margin_locked",
    "market",
    "position_control",
    "position_cost",
    "position_quantity",
    "realised_control",
    "realised_pnl",
    "venue_cash",
]


class AccountCode(enum.IntEnum):
    """Account codes: ledger x 100 + n; x09 is the ledger's control account."""

    # Ledger 1, cash: per venue and asset.
    VENUE_CASH = 101  # debit-normal: what the venue holds; never negative, pending included
    EQUITY = 102  # credit-normal: capital deposited less withdrawn
    MARKET = 103  # the market's side of spot trades and of perpetual PnL settled in cash
    CASH_FEES = 104  # debit-normal: fees paid out of the venue's cash
    CASH_FUNDING = 105  # credit-normal: funding received less paid
    CASH_MARGIN = 106  # debit-normal, pending only: cash held as initial margin
    # Ledger 2, positions: per venue, symbol and strategy.
    SPOT_QUANTITY = 201  # debit-normal, base asset: a spot holding; never negative
    PERP_QUANTITY = 202  # debit-normal, base asset: a perpetual position; < 0 is short
    POSITION_COST = 203  # debit-normal, quote asset: the cost basis (< 0 for a short's proceeds)
    POSITION_CONTROL = 209  # per venue and symbol (strategy ""), base and quote asset
    # Ledger 3, fees: per venue, symbol, strategy and fee asset (a liquidation's fee apart).
    FEES_PAID = 301  # debit-normal: fees paid (a rebate credits)
    LIQUIDATION_FEES = 302  # debit-normal: the liquidation fees of a venue's liquidation fills
    FEES_CONTROL = 309  # per venue and asset
    # Ledger 4, realised PnL: per venue, symbol, strategy, in the quote (settle) asset.
    REALISED_PNL = 401  # credit-normal: a gain credits, a loss debits
    REALISED_CONTROL = 409
    # Ledger 5, margin: per venue, symbol, strategy, in the quote (settle) asset; pending only.
    MARGIN_LOCKED = 501  # debit-normal: the initial margin a perpetual position holds
    MARGIN_CONTROL = 509
    # Ledger 6, funding: per venue, symbol, strategy and asset.
    FUNDING_PNL = 601  # credit-normal: funding received (credit) less paid (debit)
    FUNDING_CONTROL = 609


class TransferCode(enum.IntEnum):
    """Why a transfer was made."""

    DEPOSIT = 1  # capital in
    WITHDRAWAL = 2  # capital out
    TRADE = 10  # what a fill moves: spot cash, position quantity, cost added
    COST_RELEASED = 11  # cost basis a reducing fill takes off the position (average cost)
    REALISED = 12  # realised PnL, and its settlement in cash on a perpetual
    FEE = 13
    FUNDING = 14
    MARGIN = 15  # initial margin held (pending) and released (void)
    LIQUIDATION_FEE = 16  # a liquidation fill's fee: in cash and in the fees ledger


CODE_LEDGER: dict[int, LedgerId] = {code: LedgerId(code // 100) for code in AccountCode}
CODE_NAMES: dict[int, str] = {code: code.name.lower() for code in AccountCode}
CODE_FLAGS: dict[int, AccountFlag] = {
    AccountCode.VENUE_CASH: AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS,
    AccountCode.SPOT_QUANTITY: AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS,
}
QUANTITY_CODES = (AccountCode.SPOT_QUANTITY, AccountCode.PERP_QUANTITY)


@functools.lru_cache(maxsize=1 << 16)
def _key(code: AccountCode, venue: str, asset: str, strategy: str = "", symbol: str = "") -> AccountKey:
    """The key (memoised: the same instance, whose id is computed once)."""
    return AccountKey(CODE_LEDGER[code], int(code), venue, asset, strategy, symbol)


def venue_cash(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.VENUE_CASH, venue, asset)


def equity(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.EQUITY, venue, asset)


def market(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.MARKET, venue, asset)


def cash_fees(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.CASH_FEES, venue, asset)


def cash_funding(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.CASH_FUNDING, venue, asset)


def cash_margin(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.CASH_MARGIN, venue, asset)


def position_quantity(venue: str, symbol: str, strategy: str, base: str, perpetual: bool) -> AccountKey:
    code = AccountCode.PERP_QUANTITY if perpetual else AccountCode.SPOT_QUANTITY
    return _key(code, venue, base, strategy, symbol)


def position_cost(venue: str, symbol: str, strategy: str, quote: str) -> AccountKey:
    return _key(AccountCode.POSITION_COST, venue, quote, strategy, symbol)


def position_control(venue: str, symbol: str, asset: str) -> AccountKey:
    return _key(AccountCode.POSITION_CONTROL, venue, asset, "", symbol)


def fees_paid(venue: str, symbol: str, strategy: str, asset: str) -> AccountKey:
    return _key(AccountCode.FEES_PAID, venue, asset, strategy, symbol)


def liquidation_fees(venue: str, symbol: str, strategy: str, asset: str) -> AccountKey:
    return _key(AccountCode.LIQUIDATION_FEES, venue, asset, strategy, symbol)


def fees_control(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.FEES_CONTROL, venue, asset)


def realised_pnl(venue: str, symbol: str, strategy: str, asset: str) -> AccountKey:
    return _key(AccountCode.REALISED_PNL, venue, asset, strategy, symbol)


def realised_control(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.REALISED_CONTROL, venue, asset)


def margin_locked(venue: str, symbol: str, strategy: str, asset: str) -> AccountKey:
    return _key(AccountCode.MARGIN_LOCKED, venue, asset, strategy, symbol)


def margin_control(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.MARGIN_CONTROL, venue, asset)


def funding_pnl(venue: str, symbol: str, strategy: str, asset: str) -> AccountKey:
    return _key(AccountCode.FUNDING_PNL, venue, asset, strategy, symbol)


def funding_control(venue: str, asset: str) -> AccountKey:
    return _key(AccountCode.FUNDING_CONTROL, venue, asset)
