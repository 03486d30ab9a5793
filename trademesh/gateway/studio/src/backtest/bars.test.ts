// backtest/bars: the Backtest form's Bars select, its choices and what a coverage strip's "use" sets.
import { describe, expect, test } from "vitest";
import { barsChoices, barsOnPick, barsText, OWN_BARS } from "./bars";
import { optionsText } from "./figures";
import { create } from "@bufbuild/protobuf";
import { BacktestOptionsSchema } from "../gen/trademesh/backtest/v1/backtest_pb";

describe("bars", () => {
  test("the choices: the strategy's own (empty) first, then the mesh's timeframes, finest first", () => {
    const choices = barsChoices();
    expect(choices[0]).toEqual({ value: OWN_BARS, label: "the strategy's own" });
    expect(choices.slice(1).map((c) => c.value)).toEqual(["1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w"]);
  });

  test("a picked series sets its timeframe; one the mesh does not run keeps the choice", () => {
    expect(barsOnPick(OWN_BARS, "1m")).toBe("1m");
    expect(barsOnPick("1s", "5m")).toBe("5m");
    expect(barsOnPick("1m", "3m")).toBe("1m");
    expect(barsOnPick("1m", "")).toBe("1m");
  });

  test("a run's options show its bars, none for the strategies' own", () => {
    expect(barsText("1m")).toBe("bars 1m");
    expect(barsText(OWN_BARS)).toBe("");
    const options = create(BacktestOptionsSchema, { strategies: ["trend"], venue: "binance", bars: "1m" });
    expect(optionsText(options)).toBe("trend · binance · bars 1m · latency 20/20 ms");
    expect(optionsText(create(BacktestOptionsSchema, { strategies: ["trend"] }))).toBe("trend · sim · latency 20/20 ms");
  });
});
