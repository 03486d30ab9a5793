// The venue's one account: free and locked amounts per asset, and a position per symbol.
//
// Spot, as the sim's (trademesh/core/domain/matching/accounts.py): a buy fill moves the base +size and
// the quote -(price * size + fee); a sell the reverse, its fee off the quote it receives. A
// position is the net size filled on this venue, its entry the average price of what is open,
// and its realised PnL exact against that entry. Every amount is an exact decimal.

import { Dec } from "./decimal.js";
import { FailedPrecondition } from "./errors.js";
import type { Balance, Position, Side } from "./model.js";

class HeldPosition {
  size = Dec.ZERO; // signed: + long, - short
  cost = Dec.ZERO; // entry price * |size|
  realized = Dec.ZERO;

  entry(): Dec {
    return this.cost.div(this.size.abs());
  }

  apply(signedSize: Dec, price: Dec): void {
    if (this.size.isZero() || this.size.sign === signedSize.sign) {
      this.size = this.size.add(signedSize);
      this.cost = this.cost.add(price.mul(signedSize.abs()));
      return;
    }
    const closed = Dec.min(signedSize.abs(), this.size.abs());
    const entry = this.entry();
    const direction = Dec.int(this.size.sign);
    this.realized = this.realized.add(price.sub(entry).mul(closed).mul(direction));
    const wasLong = this.size.sign > 0;
    this.size = this.size.add(signedSize);
    if (this.size.isZero()) {
      this.cost = Dec.ZERO;
    } else if (this.size.sign > 0 !== wasLong) {
      this.cost = price.mul(this.size.abs()); // flipped: the rest opens at the fill's price
    } else {
      this.cost = entry.mul(this.size.abs()); // reduced: what is left keeps its entry
    }
  }

  snapshot(symbol: string): Position {
    return {
      symbol,
      size: this.size,
      entryPrice: this.size.isZero() ? null : this.entry(),
      realizedPnl: this.realized,
    };
  }
}

export class Accounts {
  private readonly free = new Map<string, Dec>();
  private readonly locked = new Map<string, Dec>();
  private readonly positionsBySymbol = new Map<string, HeldPosition>();

  constructor(initial: Iterable<readonly [string, Dec]>) {
    for (const [asset, amount] of initial) {
      this.free.set(asset, amount);
      this.locked.set(asset, Dec.ZERO);
    }
  }

  addAsset(asset: string): void {
    if (!this.free.has(asset)) {
      this.free.set(asset, Dec.ZERO);
      this.locked.set(asset, Dec.ZERO);
    }
  }

  freeOf(asset: string): Dec {
    return this.free.get(asset) ?? Dec.ZERO;
  }

  lockedOf(asset: string): Dec {
    return this.locked.get(asset) ?? Dec.ZERO;
  }

  balances(): Balance[] {
    return [...this.free.keys()].sort().map((asset) => ({
      asset,
      free: this.freeOf(asset),
      locked: this.lockedOf(asset),
    }));
  }

  lock(asset: string, amount: Dec): void {
    const free = this.freeOf(asset);
    if (amount.gt(free)) {
      throw new FailedPrecondition(`insufficient ${asset}: need ${amount}, free ${free}`);
    }
    this.addAsset(asset);
    this.free.set(asset, free.sub(amount));
    this.locked.set(asset, this.lockedOf(asset).add(amount));
  }

  unlock(asset: string, amount: Dec): void {
    this.spendLocked(asset, amount, Dec.ZERO);
  }

  // Takes `released` out of locked; `spent` of it leaves the account, the rest is freed.
  spendLocked(asset: string, released: Dec, spent: Dec): void {
    const locked = this.lockedOf(asset);
    if (released.gt(locked) || released.sign < 0) {
      // Locks are sized by the order manager: getting here is a bookkeeping bug.
      throw new Error(`cannot release ${released} ${asset}: locked ${locked}`);
    }
    this.locked.set(asset, locked.sub(released));
    this.free.set(asset, this.freeOf(asset).add(released).sub(spent));
  }

  credit(asset: string, amount: Dec): void {
    this.addAsset(asset);
    this.free.set(asset, this.freeOf(asset).add(amount));
  }

  // Books one spot fill; `released` is what the order had locked for this part of it.
  settleSpotFill(
    symbol: string,
    assets: readonly [string, string],
    side: Side,
    price: Dec,
    size: Dec,
    fee: Dec,
    released: Dec,
  ): void {
    const [base, quote] = assets;
    const notional = price.mul(size);
    if (side === "buy") {
      this.spendLocked(quote, released, notional.add(fee));
      this.credit(base, size);
    } else {
      this.spendLocked(base, released, size);
      this.credit(quote, notional.sub(fee));
    }
    this.recordFill(symbol, side, price, size);
  }

  positionSize(symbol: string): Dec {
    return this.positionsBySymbol.get(symbol)?.size ?? Dec.ZERO;
  }

  position(symbol: string): Position {
    return (this.positionsBySymbol.get(symbol) ?? new HeldPosition()).snapshot(symbol);
  }

  positions(): Position[] {
    return [...this.positionsBySymbol.keys()].sort().map((symbol) => this.position(symbol));
  }

  private recordFill(symbol: string, side: Side, price: Dec, size: Dec): void {
    let position = this.positionsBySymbol.get(symbol);
    if (position === undefined) {
      position = new HeldPosition();
      this.positionsBySymbol.set(symbol, position);
    }
    position.apply(side === "buy" ? size : size.neg(), price);
  }
}
