// MarketData.GetTrades for node-ref: its latest trades of each symbol (a log per symbol) and the
// paging, as the Python runtime pages (trademesh/venues/runtime/trades.py): a page token holds the range's
// symbol and end and where it goes on, a time and how many trades of that instant were already
// returned, so pages neither repeat nor skip a trade among trades of one timestamp. The token is
// this venue's own (base64url of "1|end|since|skip|symbol"): opaque to clients, checked when it
// comes back.

import { FailedPrecondition } from "./errors.js";
import type { Side } from "./model.js";

export const MAX_TRADES = 1000;
export const DEFAULT_TRADES = 1000;
// Trades kept per symbol; the log is cut back to this when it holds twice as many.
export const TRADES_KEPT = 20_000;
const MAX_TOKEN_CHARS = 512;

export interface PublicTrade {
  tsNs: bigint;
  tradeId: string;
  price: string;
  size: string;
  side: Side;
}

export interface TradesCursor {
  symbol: string;
  endNs: bigint;
  sinceNs: bigint;
  skip: number;
}

interface Kept {
  tsNs: bigint;
  tradeId: string;
  priceTicks: bigint;
  lots: bigint;
  side: Side;
}

// One symbol's latest trades, oldest first.
export class TradeLog {
  private kept: Kept[] = [];
  // Older trades were let go: the first kept is not the symbol's first.
  private cut = false;

  constructor(private readonly capacity = TRADES_KEPT) {}

  get length(): number {
    return this.kept.length;
  }

  add(tsNs: bigint, tradeId: string, priceTicks: bigint, lots: bigint, side: Side): void {
    this.kept.push({ tsNs, tradeId, priceTicks, lots, side });
    if (this.kept.length >= 2 * this.capacity) {
      this.kept = this.kept.slice(this.kept.length - this.capacity);
      this.cut = true;
    }
  }

  // The first `limit` kept trades of [sinceNs, endNs), and whether they are all of them;
  // FailedPrecondition when trades from sinceNs on were let go (an answer from later would look
  // whole), as the sim's log does.
  read(
    sinceNs: bigint,
    endNs: bigint,
    limit: number,
    price: (ticks: bigint) => string,
    size: (lots: bigint) => string,
  ): { trades: PublicTrade[]; complete: boolean } {
    const oldest = this.kept[0];
    if (this.cut && oldest !== undefined && sinceNs < oldest.tsNs) {
      throw new FailedPrecondition(
        `node-ref keeps the latest ${this.capacity} trades of a symbol: the oldest it holds is at ` +
          `${oldest.tsNs} ns; ask from then on`,
      );
    }
    let low = 0;
    let high = this.kept.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.kept[middle]!.tsNs < sinceNs) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    const trades: PublicTrade[] = [];
    let index = low;
    for (; index < this.kept.length && trades.length < limit; index += 1) {
      const item = this.kept[index]!;
      if (item.tsNs >= endNs) {
        return { trades, complete: true };
      }
      trades.push({
        tsNs: item.tsNs,
        tradeId: item.tradeId,
        price: price(item.priceTicks),
        size: size(item.lots),
        side: item.side,
      });
    }
    return { trades, complete: index >= this.kept.length || this.kept[index]!.tsNs >= endNs };
  }
}

export function encodeToken(cursor: TradesCursor): string {
  const text = `1|${cursor.endNs}|${cursor.sinceNs}|${cursor.skip}|${cursor.symbol}`;
  return Buffer.from(text, "utf8").toString("base64url");
}

// The cursor of a page token; null when it is not one of this venue's.
export function decodeToken(token: string): TradesCursor | null {
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) {
    return null;
  }
  const parts = Buffer.from(token, "base64url").toString("utf8").split("|");
  if (parts.length < 5 || parts[0] !== "1" || !parts.slice(1, 4).every((p) => /^\d{1,19}$/.test(p))) {
    return null;
  }
  const cursor = {
    endNs: BigInt(parts[1]!),
    sinceNs: BigInt(parts[2]!),
    skip: Number(parts[3]!),
    symbol: parts.slice(4).join("|"),
  };
  return cursor.sinceNs < cursor.endNs && cursor.skip <= MAX_TRADES * 10 ? cursor : null;
}

// The page a read answers for a cursor, and the next page's cursor (null: the range is done).
// A read holds the first trades of [cursor.sinceNs, cursor.endNs), the trades of the cursor's
// instant already returned among them.
export function tradesPage(
  cursor: TradesCursor,
  read: { trades: PublicTrade[]; complete: boolean },
  limit: number,
): [PublicTrade[], TradesCursor | null] {
  let skip = cursor.skip;
  const fresh: PublicTrade[] = [];
  for (const trade of read.trades) {
    if (trade.tsNs < cursor.sinceNs || trade.tsNs >= cursor.endNs) {
      continue;
    }
    if (trade.tsNs === cursor.sinceNs && skip > 0) {
      skip -= 1;
      continue;
    }
    fresh.push(trade);
  }
  const page = fresh.slice(0, limit);
  if (read.complete && fresh.length <= limit) {
    return [page, null];
  }
  const last = page[page.length - 1];
  if (last === undefined) {
    return [page, null]; // nothing kept past the trades already sent
  }
  const atLast = page.filter((trade) => trade.tsNs === last.tsNs).length;
  const next = {
    symbol: cursor.symbol,
    endNs: cursor.endNs,
    sinceNs: last.tsNs,
    skip: atLast + (last.tsNs === cursor.sinceNs ? cursor.skip : 0),
  };
  return [page, next];
}
