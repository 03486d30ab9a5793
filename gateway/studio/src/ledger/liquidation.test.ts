// ledger/liquidation: which steps of a trace are a liquidation's.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { FieldSchema, type TraceStep, TraceStepSchema } from "../gen/trademesh/ledger/v1/ledger_pb";
import { isLiquidationStep } from "./liquidation";

function step(kind: string, fields: Record<string, string>, summary = ""): TraceStep {
  return create(TraceStepSchema, {
    kind,
    id: `${kind}-1`,
    summary,
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
    expect(isLiquidationStep(step("transfer", { code: "liquidation_fee", amount: "1.5" }))).toBe(true);
  });

  test("an ordinary fill, and a risk check speaking of the distance to liquidation, are not", () => {
    expect(isLiquidationStep(step("fill", { venue: "sim", liquidation: "false" }))).toBe(false);
    expect(isLiquidationStep(step("fill", { venue: "sim", liquidity: "taker" }))).toBe(false);
    expect(isLiquidationStep(step("order", { client_order_id: "intent-liq-1" }))).toBe(false);
    const check = step("risk_check", { policy: "liquidation.min_distance_entry", liquidation: "true" });
    expect(isLiquidationStep(check)).toBe(false);
  });
});
