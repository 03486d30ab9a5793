// market/timeframes: the chart's timeframe picker offers 1w, and weeks open Monday 00:00 UTC.
import { describe, expect, test } from "vitest";
import { Timeframe } from "../gen/trademesh/common/v1/common_pb";
import { CandleSeries } from "./candles";
import { intervalStart, TIMEFRAMES, timeframeByLabel } from "./timeframes";

const MONDAY_S = Date.UTC(2024, 2, 4) / 1000; // 2024-03-04, a Monday

describe("TIMEFRAMES", () => {
  test("the picker lists every timeframe, finest first, ending with 1w", () => {
    expect(TIMEFRAMES.map((t) => t.label)).toEqual(["1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w"]);
    expect(timeframeByLabel("1w")).toMatchObject({ value: Timeframe.TIMEFRAME_1_WEEK, seconds: 604_800 });
  });
});

describe("intervalStart", () => {
  const week = timeframeByLabel("1w")!;

  test("a week opens Monday 00:00 UTC: Sunday 23:59:59 and Monday 00:00 are in different weeks", () => {
    expect(intervalStart(MONDAY_S - 1, week.seconds, week.offsetS)).toBe(MONDAY_S - 7 * 86_400);
    expect(intervalStart(MONDAY_S, week.seconds, week.offsetS)).toBe(MONDAY_S);
    expect(intervalStart(MONDAY_S + 6 * 86_400 + 86_399, week.seconds, week.offsetS)).toBe(MONDAY_S);
    expect(new Date(intervalStart(0, week.seconds, week.offsetS) * 1000).toISOString()).toBe("1969-12-29T00:00:00.000Z");
  });

  test("the other timeframes open on multiples of their length", () => {
    expect(intervalStart(MONDAY_S + 3_599, 3_600)).toBe(MONDAY_S);
    expect(intervalStart(MONDAY_S + 86_400 + 5, 86_400)).toBe(MONDAY_S + 86_400);
  });

  test("the chart's 1w candles put a trade in its Monday's week", () => {
    const series = new CandleSeries(week.seconds, week.offsetS);
    series.trade(BigInt(MONDAY_S - 1) * 1_000_000_000n, "10");
    series.trade(BigInt(MONDAY_S) * 1_000_000_000n, "11");
    expect(series.list().map((c) => [c.time, c.close])).toEqual([
      [MONDAY_S - 7 * 86_400, "10"],
      [MONDAY_S, "11"],
    ]);
  });
});
