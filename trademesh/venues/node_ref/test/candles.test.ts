// Candles: weeks open Monday 00:00 UTC, live and in GetCandles' history built from 1m candles.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CandleBook } from "../src/candles.js";
import { dec } from "../src/decimal.js";
import { Scale } from "../src/exchange.js";
import { openTimeNs } from "../src/model.js";

const S = 1_000_000_000n;
const MONDAY_NS = (BigInt(Date.UTC(2024, 2, 4)) / 1000n) * S; // 2024-03-04, a Monday
const WEEK_NS = 7n * 86_400n * S;

test("a week opens Monday 00:00 UTC: Sunday 23:59:59 and Monday 00:00 are in different weeks", () => {
  assert.equal(openTimeNs(604800, MONDAY_NS - S), MONDAY_NS - WEEK_NS);
  assert.equal(openTimeNs(604800, MONDAY_NS), MONDAY_NS);
  assert.equal(openTimeNs(604800, MONDAY_NS + WEEK_NS - 1n), MONDAY_NS);
  assert.equal(openTimeNs(86400, MONDAY_NS + 86_400n * S + 5n), MONDAY_NS + 86_400n * S);
});

test("1w history regroups the kept 1m candles on Mondays, the open week last", () => {
  const book = new CandleBook(new Scale(dec("0.1")), new Scale(dec("0.001")));
  const closed: Array<[number, bigint]> = [];
  const onClose = (timeframe: number, candle: { openTimeNs: bigint }): void => {
    closed.push([timeframe, candle.openTimeNs]);
  };
  book.addTrade(MONDAY_NS - 2n * 86_400n * S, 100n, 1n, onClose); // Saturday
  book.addTrade(MONDAY_NS - S, 120n, 2n, onClose); // Sunday 23:59:59
  book.addTrade(MONDAY_NS, 90n, 3n, onClose); // Monday 00:00
  book.addTrade(MONDAY_NS + 2n * 60n * S, 95n, 1n, onClose);
  assert.ok(closed.some(([tf, open]) => tf === 604800 && open === MONDAY_NS - WEEK_NS));
  const weeks = book.history(604800, 0n, MONDAY_NS + WEEK_NS, 10);
  assert.deepEqual(
    weeks.map((c) => [c.openTimeNs, c.open.toString(), c.high.toString(), c.close.toString(), c.closed]),
    [
      [MONDAY_NS - WEEK_NS, "10", "12", "12", true],
      [MONDAY_NS, "9", "9.5", "9.5", false],
    ],
  );
});
