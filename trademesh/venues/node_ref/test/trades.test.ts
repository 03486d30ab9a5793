// GetTrades: node-ref's trade log and its paging (pages neither repeat nor skip trades of one instant).

import assert from "node:assert/strict";
import { test } from "node:test";
import { TradeLog, decodeToken, encodeToken, tradesPage, type TradesCursor } from "../src/trades.js";

function logOf(times: number[], capacity = 1000): TradeLog {
  const log = new TradeLog(capacity);
  times.forEach((t, i) => log.add(BigInt(t), String(i + 1), BigInt(100 + i), 1n, i % 2 === 0 ? "buy" : "sell"));
  return log;
}

function pageAll(log: TradeLog, start: bigint, end: bigint, limit: number): string[] {
  let cursor: TradesCursor | null = { symbol: "BTC/USDT", endNs: end, sinceNs: start, skip: 0 };
  const ids: string[] = [];
  for (let pages = 0; cursor !== null; pages += 1) {
    assert.ok(pages < 1000, "the paging ends");
    const read = log.read(cursor.sinceNs, cursor.endNs, limit + cursor.skip, String, String);
    const [page, next] = tradesPage(cursor, read, limit);
    assert.ok(page.length <= limit);
    ids.push(...page.map((trade) => trade.tradeId));
    cursor = next === null ? null : decodeToken(encodeToken(next));
  }
  return ids;
}

test("pages of every size hold each trade of the range once, in order, across runs of one instant", () => {
  const times = [1, 1, 1, 2, 5, 5, 5, 5, 5, 9, 10, 10, 11, 11, 11, 11, 12, 20, 20, 21];
  const log = logOf(times);
  const expected = times.map((_, i) => String(i + 1)).slice(0, -1);
  for (const limit of [1, 2, 3, 7, 1000]) {
    assert.deepEqual(pageAll(log, 0n, 21n, limit), expected, `limit ${limit}`);
  }
  assert.deepEqual(pageAll(log, 5n, 11n, 2), ["5", "6", "7", "8", "9", "10", "11", "12"]);
});

test("a page token is checked when it comes back", () => {
  const cursor = { symbol: "ETH/USDT", endNs: 1_700_000_000_000_000_123n, sinceNs: 5n, skip: 2 };
  assert.deepEqual(decodeToken(encodeToken(cursor)), cursor, "ns beyond 2^53 kept exact");
  for (const bad of ["", "garbage!", Buffer.from("2|9|1|0|X").toString("base64url"), "x".repeat(600)]) {
    assert.equal(decodeToken(bad), null, bad);
  }
});

test("the log is cut back to what it keeps", () => {
  const log = logOf([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 5);
  assert.ok(log.length < 10);
  // From before what is kept: refused, not answered from later as if whole.
  assert.throws(() => log.read(0n, 100n, 100, String, String), /the oldest it holds is at 6 ns/);
  const read = log.read(6n, 100n, 100, String, String);
  assert.equal(read.complete, true);
  assert.equal(read.trades[read.trades.length - 1]!.tradeId, "12");
});
