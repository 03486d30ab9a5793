// The exchange: locks, fills and fees on the account, executions in order, reduce-only orders.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LevelChange } from "../src/book.js";
import { dec } from "../src/decimal.js";
import { FailedPrecondition } from "../src/errors.js";
import { Exchange } from "../src/exchange.js";
import type { Execution, OrderRequest } from "../src/model.js";

function exchange(): [Exchange, Execution[]] {
  const executions: Execution[] = [];
  let now = 1_000n;
  const listener = {
    onTrade: () => undefined,
    onLevels: (_symbol: string, _changes: readonly LevelChange[]) => undefined,
    onExecution: (execution: Execution) => executions.push(execution),
  };
  const ex = new Exchange(listener, () => (now += 1n));
  // A synthetic ask of 1 BTC at 65000 and a bid of 1 BTC at 64000 (ticks of 0.01, lots of 0.00001).
  ex.submitSynthetic("BTC/USDT", "sell", 6_500_000n, 100_000n, "gtc");
  ex.submitSynthetic("BTC/USDT", "buy", 6_400_000n, 100_000n, "gtc");
  return [ex, executions];
}

function limit(side: "buy" | "sell", size: string, price: string, extra: Partial<OrderRequest> = {}): OrderRequest {
  return {
    symbol: "BTC/USDT",
    side,
    type: "limit",
    size: dec(size),
    price: dec(price),
    timeInForce: "gtc",
    postOnly: false,
    reduceOnly: false,
    clientOrderId: "",
    ...extra,
  };
}

function balance(ex: Exchange, asset: string): [string, string] {
  const found = ex.balances().find((b) => b.asset === asset)!;
  return [found.free.toString(), found.locked.toString()];
}

test("a resting buy locks its price, size and the dearer fee; a cancel gives it back", () => {
  const [ex, executions] = exchange();
  const [order] = ex.place(limit("buy", "0.1", "60000"));
  assert.equal(order.status, "open");
  assert.deepEqual(balance(ex, "USDT"), ["993997", "6003"]);
  const canceled = ex.cancel(order.orderId, "", "canceled by request");
  assert.equal(canceled.status, "canceled");
  assert.deepEqual(balance(ex, "USDT"), ["1000000", "0"]);
  assert.deepEqual(
    executions.map((e) => e.order.status),
    ["open", "canceled"],
  );
});

test("a crossing buy fills at the maker's price, pays the taker fee in the quote, and books the position", () => {
  const [ex, executions] = exchange();
  const [order] = ex.place(limit("buy", "0.5", "66000"));
  assert.equal(order.status, "filled");
  assert.equal(order.averageFillPrice?.toString(), "65000");
  const fill = executions.find((e) => e.fill !== null)!.fill!;
  assert.equal(fill.liquidity, "taker");
  assert.equal(fill.fee.toString(), "16.25");
  assert.equal(fill.feeAsset, "USDT");
  assert.deepEqual(balance(ex, "USDT"), ["967483.75", "0"]);
  assert.deepEqual(balance(ex, "BTC"), ["10.5", "0"]);
  assert.equal(ex.positions("BTC/USDT")[0]!.size.toString(), "0.5");
});

test("a repeated client order id answers the first order and places nothing", () => {
  const [ex] = exchange();
  const [first] = ex.place(limit("buy", "0.1", "60000", { clientOrderId: "c-1" }));
  const [again, duplicate] = ex.place(limit("buy", "0.2", "61000", { clientOrderId: "c-1" }));
  assert.equal(duplicate, true);
  assert.equal(again.orderId, first.orderId);
  assert.equal(ex.openOrders(null).length, 1);
});

test("a reduce-only order on a flat position is refused; one on a long is trimmed to it", () => {
  const [ex] = exchange();
  assert.throws(() => ex.place(limit("sell", "0.1", "70000", { reduceOnly: true })), FailedPrecondition);
  ex.place(limit("buy", "0.2", "65000"));
  const [trimmed] = ex.place(limit("sell", "0.5", "70000", { reduceOnly: true }));
  assert.equal(trimmed.size.toString(), "0.2");
  assert.throws(() => ex.place(limit("sell", "0.1", "71000", { reduceOnly: true })), FailedPrecondition);
});

test("a limit price outside the band is refused naming the price", () => {
  const [ex] = exchange();
  assert.throws(
    () => ex.place(limit("sell", "0.1", "1000000")),
    (error: Error) => error.message.startsWith("price: 1000000 is outside the price band"),
  );
});

test("funds short of an order are refused, and nothing is locked", () => {
  const [ex] = exchange();
  assert.throws(() => ex.place(limit("buy", "100", "60000")), /insufficient USDT/);
  assert.deepEqual(balance(ex, "USDT"), ["1000000", "0"]);
});
