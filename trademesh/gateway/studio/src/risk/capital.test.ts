// risk/capital: the samples the Risk page keeps of each strategy's capital, and utilisation.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { CapitalUseSchema, GetRiskStateResponseSchema } from "../gen/trademesh/risk/v1/inspector_pb";
import { CapitalHistory, KEEP_SAMPLES, utilisation } from "./capital";

const NS_PER_S = 1_000_000_000n;

function answer(second: number, ...rows: [string, string, string, string][]) {
  return create(GetRiskStateResponseSchema, {
    tsNs: BigInt(second) * NS_PER_S + 250_000_000n,
    capital: rows.map(([strategyId, reserved, used, suppressed]) =>
      create(CapitalUseSchema, { strategyId, reserved, used, suppressed }),
    ),
  });
}

describe("utilisation", () => {
  test("is used over reserved", () => {
    expect(utilisation({ used: "250", reserved: "1000" })).toBe(0.25);
    expect(utilisation({ used: "1200", reserved: "1000" })).toBeCloseTo(1.2);
  });

  test("is none without a reservation", () => {
    expect(utilisation({ used: "250", reserved: "" })).toBeNull();
    expect(utilisation({ used: "250", reserved: "0" })).toBeNull();
  });
});

describe("CapitalHistory", () => {
  test("keeps a sample per strategy per second, the later answer of a second replacing it", () => {
    const history = new CapitalHistory();
    history.take(answer(100, ["trend", "1000", "0", "0"], ["manual", "", "50", "0"]));
    history.take(answer(101, ["trend", "1000", "300", "0"]));
    history.take(answer(101, ["trend", "1000", "310", "20"]));
    expect(history.of("trend").map((s) => [s.time, s.used, s.suppressed])).toEqual([
      [100, "0", "0"],
      [101, "310", "20"],
    ]);
    // The current rows are the last answer's; a strategy gone from it keeps its samples.
    expect(history.current().map((u) => u.strategyId)).toEqual(["trend"]);
    expect(history.of("manual")).toHaveLength(1);
  });

  test("ignores an answer older than the last sample", () => {
    const history = new CapitalHistory();
    history.take(answer(200, ["trend", "1000", "10", "0"]));
    history.take(answer(199, ["trend", "1000", "99", "0"]));
    expect(history.of("trend").map((s) => s.used)).toEqual(["10"]);
  });

  test("keeps at most an hour of samples", () => {
    const history = new CapitalHistory();
    for (let second = 0; second < KEEP_SAMPLES + 5; second++) history.take(answer(second, ["trend", "1", "0", "0"]));
    const samples = history.of("trend");
    expect(samples).toHaveLength(KEEP_SAMPLES);
    expect(samples[0]?.time).toBe(5);
  });
});
