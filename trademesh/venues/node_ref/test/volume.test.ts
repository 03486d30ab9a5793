// The 24h volume and 24h open of the venue's own trades: one-minute buckets, the window's first
// trade's price its open, the last price when the window holds no trade.

import assert from "node:assert/strict";
import { test } from "node:test";
import { RollingVolume } from "../src/publisher.js";

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % MINUTE);

test("the 24h open is the window's first trade's price, at a minute's resolution", () => {
  const volume = new RollingVolume();
  assert.equal(volume.opening(T0, undefined), null);
  volume.add(T0 + 5_000, 100n, 2n);
  volume.add(T0 + 59_000, 110n, 1n);
  volume.add(T0 + 61_000, 120n, 4n);
  assert.equal(volume.opening(T0 + 2 * MINUTE, 120n), 100n);
  assert.equal(volume.opening(T0 + DAY + MINUTE - 1, 120n), 100n);
  assert.equal(volume.opening(T0 + DAY + MINUTE, 120n), 120n);
  assert.deepEqual(volume.totals(T0 + DAY + MINUTE), [4n, 480n]);
  assert.equal(volume.opening(T0 + DAY + 2 * MINUTE, 120n), 120n, "no trade in the window: the last price");
  assert.deepEqual(volume.totals(T0 + DAY + 2 * MINUTE), [0n, 0n]);
});
