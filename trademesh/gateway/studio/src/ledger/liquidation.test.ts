// ledger/liquidation: which steps of a trace are a liquidation's.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { FieldSchema, type TraceStep, TraceStepSchema } from "../gen/trademesh/ledger/v1/ledger_pb";
import { isLiquidationStep, liquidationSteps } from "./liquidation";

function step(kind: string, fields: Record<string, string>, id = `${kind}-1`): TraceStep {
  return create(TraceStepSchema, {
    kind,
    id,
    fields: Object.entries(fields).map(([name, value]) => create(FieldSchema, { name, value })),
  });
}

describe("isLiquidationStep", () => {
  test("an order or fill the ledger marks as a liquidation is one", () => {
    expect(isLiquidationStep(step("fill", { venue: "sim", liquidation: "true" }))).toBe(true);
    expect(isLiquidationStep(step("fill", { venue: "sim", liquidation: "True" }))).toBe(true);
    expect(isLiquidationStep(step("order", { liquidation: "1" }))).toBe(true);
    expect(isLiquidationStep(step("order", { client_order_id: "liq-0001" }))).toBe(true);
  });

  test("a transfer booking a liquidation fee is one", () => {
    expect(isLiquidationStep(step("transfer", { code: "16", amount: "1.5" }))).toBe(true);
    expect(isLiquidationStep(step("transfer", { code: "liquidation_fee", amount: "1.5" }))).toBe(true);
  });

  test("an ordinary fill, order or fee, and a risk check speaking of the distance to liquidation, are not", () => {
    expect(isLiquidationStep(step("fill", { venue: "sim", liquidation: "false" }))).toBe(false);
    expect(isLiquidationStep(step("fill", { venue: "sim", liquidity: "taker" }))).toBe(false);
    expect(isLiquidationStep(step("order", { client_order_id: "intent-liq-1" }))).toBe(false);
    expect(isLiquidationStep(step("transfer", { code: "13", amount: "1.5" }))).toBe(false);
    expect(isLiquidationStep(step("fill", { code: "16" }))).toBe(false);
    const check = step("risk_check", { policy: "liquidation.min_distance_entry", liquidation: "true" });
    expect(isLiquidationStep(check)).toBe(false);
  });
});

describe("liquidationSteps", () => {
  test("a liquidation order's fills and their transfers are the liquidation's; another order's not", () => {
    const steps = [
      step("order", { client_order_id: "c-1" }, "o-1"),
      step("fill", { order_id: "o-1" }, "f-1"),
      step("transfer", { code: "10", fill_id: "f-1" }, "t-1"),
      step("order", { client_order_id: "liq-7" }, "o-2"),
      step("fill", { order_id: "o-2" }, "f-2"),
      step("transfer", { code: "10", fill_id: "f-2" }, "t-2"),
      step("transfer", { code: "16", fill_id: "f-2" }, "t-3"),
    ];
    expect([...liquidationSteps(steps)].sort()).toEqual(["f-2", "o-2", "t-2", "t-3"]);
  });

  test("a trace without a liquidation has none", () => {
    const steps = [step("order", { client_order_id: "c-1" }, "o-1"), step("fill", { order_id: "o-1" }, "f-1")];
    expect(liquidationSteps(steps).size).toBe(0);
  });
});
