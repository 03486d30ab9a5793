// The matching book: price-time priority, what rests and what expires, the level changes.

import assert from "node:assert/strict";
import { test } from "node:test";
import { OrderBook, SYNTHETIC, USER } from "../src/book.js";

function book(): OrderBook {
  const b = new OrderBook("BTC/USDT");
  b.submit(1, SYNTHETIC, "sell", 101n, 5n, "gtc");
  b.submit(2, SYNTHETIC, "sell", 101n, 3n, "gtc");
  b.submit(3, SYNTHETIC, "sell", 103n, 4n, "gtc");
  b.submit(4, SYNTHETIC, "buy", 99n, 6n, "gtc");
  return b;
}

test("a crossing limit order fills the best price first, oldest order first, and rests its remainder", () => {
  const b = book();
  const result = b.submit(10, USER, "buy", 102n, 10n, "gtc");
  assert.deepEqual(
    result.fills.map((f) => [f.makerId, f.price, f.lots]),
    [
      [1, 101n, 5n],
      [2, 101n, 3n],
    ],
  );
  assert.equal(result.rested, 2n);
  assert.deepEqual(result.changes, [
    ["sell", 101n, 0n],
    ["buy", 102n, 2n],
  ]);
  assert.equal(b.bestBid(), 102n);
  assert.equal(b.bestAsk(), 103n);
});

test("a market order walks the book and never rests; what it cannot fill expires", () => {
  const b = book();
  const result = b.submit(10, USER, "buy", null, 20n, "ioc");
  assert.equal(result.filled, 12n);
  assert.equal(result.expired, 8n);
  assert.equal(result.rested, 0n);
  assert.equal(b.bestAsk(), null);
});

test("fill-or-kill fills all or nothing; immediate-or-cancel keeps what filled", () => {
  const b = book();
  const killed = b.submit(10, USER, "buy", 101n, 9n, "fok");
  assert.equal(killed.fokKilled, true);
  assert.equal(killed.fills.length, 0);
  assert.deepEqual(b.depth("sell"), [
    [101n, 8n],
    [103n, 4n],
  ]);
  const ioc = b.submit(11, USER, "buy", 101n, 9n, "ioc");
  assert.equal(ioc.filled, 8n);
  assert.equal(ioc.expired, 1n);
});

test("a post-only order that would cross is refused and changes nothing", () => {
  const b = book();
  const result = b.submit(10, USER, "buy", 101n, 1n, "gtc", true);
  assert.equal(result.rejectedPostOnly, true);
  assert.equal(b.resting(10), undefined);
  assert.deepEqual(b.depth("sell", 1), [[101n, 8n]]);
});

test("a cancel removes the order and reports the level's new total; a reduce keeps its queue place", () => {
  const b = book();
  assert.deepEqual(b.cancel(1), [5n, ["sell", 101n, 3n]]);
  assert.deepEqual(b.cancel(1), [0n, null]);
  b.submit(5, USER, "sell", 101n, 4n, "gtc");
  assert.deepEqual(b.reduce(2, 1n), [1n, ["sell", 101n, 6n]]);
  const result = b.submit(10, USER, "buy", 101n, 2n, "ioc");
  assert.deepEqual(
    result.fills.map((f) => f.makerId),
    [2],
    "order 2 kept its place ahead of order 5",
  );
});

test("a maker cap trims a user maker mid-sweep and the sweep goes on to the next order", () => {
  const b = new OrderBook("BTC/USDT");
  b.submit(1, USER, "sell", 100n, 5n, "gtc");
  b.submit(2, SYNTHETIC, "sell", 100n, 5n, "gtc");
  const result = b.submit(3, SYNTHETIC, "buy", 100n, 8n, "ioc", false, (makerId) => (makerId === 1 ? 2n : null));
  assert.deepEqual(
    result.fills.map((f) => [f.makerId, f.lots]),
    [
      [1, 2n],
      [2, 5n],
    ],
  );
  assert.deepEqual(result.trimmed, [1]);
  assert.equal(result.expired, 1n);
  assert.equal(b.resting(1), undefined);
});

test("the level changes of every submit rebuild the book exactly", () => {
  const b = new OrderBook("BTC/USDT");
  const copy = new Map<string, bigint>();
  let id = 0;
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 2000; i += 1) {
    id += 1;
    const side = random(2) === 0 ? "buy" : "sell";
    const price = BigInt(90 + random(21));
    const result =
      random(5) === 0
        ? { changes: [b.cancel(random(id) + 1)[1]].filter((c) => c !== null) }
        : b.submit(id, SYNTHETIC, side, price, BigInt(1 + random(9)), random(3) === 0 ? "ioc" : "gtc");
    for (const change of result.changes) {
      const [s, p, total] = change!;
      if (total === 0n) {
        copy.delete(`${s}${p}`);
      } else {
        copy.set(`${s}${p}`, total);
      }
    }
  }
  const levels = new Map<string, bigint>();
  for (const side of ["buy", "sell"] as const) {
    for (const [price, total] of b.depth(side)) {
      levels.set(`${side}${price}`, total);
    }
  }
  assert.deepEqual(copy, levels);
  const bid = b.bestBid();
  const ask = b.bestAsk();
  assert.ok(bid === null || ask === null || bid < ask, "the book is not crossed");
});
