// screener/model: a metric's value as the Screener page shows it.
import { describe, expect, test } from "vitest";
import { isMoneyMetric, metricText } from "./model";

describe("metricText", () => {
  test("money metrics to the cent, thousands grouped (the float's long decimals gone)", () => {
    expect(metricText("volume_24h", "233931.04313800001")).toBe("233,931.04");
    expect(metricText("bar_volume", "1234.005")).toBe("1,234.01");
    expect(metricText("top_depth", "0.0012")).toBe("0.0012"); // never a non-zero amount as zero
  });

  test("any other metric as the wire spelled it", () => {
    expect(metricText("momentum", "0.0012345678901234")).toBe("0.0012345678901234");
    expect(metricText("spread_bps", "1.5384615384615385")).toBe("1.5384615384615385");
    expect(metricText("funding_rate", "0.0001")).toBe("0.0001");
  });

  test("a metric the row lacks is a dash", () => {
    expect(metricText("volume_24h", undefined)).toBe("–");
    expect(metricText("momentum", "")).toBe("–");
  });

  test("the money metrics are the volumes and the depth", () => {
    expect(["volume_24h", "bar_volume", "top_depth"].every(isMoneyMetric)).toBe(true);
    expect(["spread_bps", "volatility", "momentum", "funding_rate"].some(isMoneyMetric)).toBe(false);
  });
});
