// The seeded market: the same seed makes the same tape; another seed another one.

import assert from "node:assert/strict";
import { test } from "node:test";
import { SYMBOLS } from "../src/config.js";
import { Exchange } from "../src/exchange.js";
import { SyntheticMarket } from "../src/market.js";

function tape(seed: bigint, steps: number): string[] {
  const trades: string[] = [];
  const listener = {
    onTrade: (symbol: string, tradeId: string, price: bigint, lots: bigint) =>
      trades.push(`${symbol} ${tradeId} ${price} ${lots}`),
    onLevels: () => undefined,
    onExecution: () => undefined,
  };
  let now = 0n;
  const exchange = new Exchange(listener, () => (now += 1_000_000n));
  const market = new SyntheticMarket(exchange, SYMBOLS, seed, 0.05);
  market.prime();
  for (let step = 0; step < steps; step += 1) {
    market.step();
  }
  const book = exchange.market("BTC/USDT").book;
  trades.push(`book ${book.depth("buy", 3).join(";")} | ${book.depth("sell", 3).join(";")}`);
  return trades;
}

test("the same seed makes the same trades and book; another seed does not", () => {
  const first = tape(7n, 400);
  assert.ok(first.length > 20, `only ${first.length - 1} trades in 20 s of market`);
  assert.deepEqual(tape(7n, 400), first);
  assert.notDeepEqual(tape(8n, 400), first);
});

test("the market's book is never crossed and quotes both sides", () => {
  const listener = { onTrade: () => undefined, onLevels: () => undefined, onExecution: () => undefined };
  let now = 0n;
  const exchange = new Exchange(listener, () => (now += 1_000_000n));
  const market = new SyntheticMarket(exchange, SYMBOLS, 11n, 0.05);
  market.prime();
  for (let step = 0; step < 2000; step += 1) {
    market.step();
    for (const spec of SYMBOLS) {
      const book = exchange.market(spec.symbol).book;
      const bid = book.bestBid();
      const ask = book.bestAsk();
      assert.ok(bid !== null && ask !== null && bid < ask, `${spec.symbol} at step ${step}: ${bid} / ${ask}`);
    }
  }
});
