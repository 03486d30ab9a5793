// backtest/coverage: the series a strip shows per venue and symbol, and the holes of a run's range.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { CoverageSchema, HoleSchema } from "../gen/trademesh/history/v1/history_pb";
import { holesIn, holesText, stripSeries } from "./coverage";

const MIN = 60_000_000_000n;

function series(symbol: string, timeframe: string, stepNs: bigint, holes: [bigint, bigint][] = []) {
  return create(CoverageSchema, {
    venue: "binance",
    symbol,
    timeframe,
    stepNs,
    startNs: 0n,
    endNs: 1000n * MIN,
    holes: holes.map(([startNs, endNs]) => create(HoleSchema, { startNs, endNs })),
    holeCount: BigInt(holes.length),
  });
}

describe("coverage", () => {
  test("a symbol's strip is its 1m series, else its shortest", () => {
    const chosen = stripSeries([
      series("BTC/USDT", "1s", 1_000_000_000n),
      series("BTC/USDT", "1m", MIN),
      series("ETH/USDT", "1h", 60n * MIN),
      series("ETH/USDT", "5m", 5n * MIN),
    ]);
    expect(chosen.map((s) => `${s.symbol} ${s.timeframe}`)).toEqual(["BTC/USDT 1m", "ETH/USDT 5m"]);
  });

  test("the holes inside a range are clipped to it; those outside or of other symbols are not", () => {
    const held = [series("BTC/USDT", "1m", MIN, [[100n * MIN, 160n * MIN], [500n * MIN, 510n * MIN]])];
    const found = holesIn(held, "binance", ["BTC/USDT"], 130n * MIN, 400n * MIN);
    expect(found).toEqual([{ symbol: "BTC/USDT", timeframe: "1m", startNs: 130n * MIN, endNs: 160n * MIN, bars: 30n }]);
    expect(holesText(found)).toContain("1 hole (30 bars missing)");
    expect(holesIn(held, "binance", ["BTC/USDT"], 200n * MIN, 500n * MIN)).toEqual([]);
    expect(holesIn(held, "binance", ["ETH/USDT"], 0n, 1000n * MIN)).toEqual([]);
    expect(holesIn(held, "sim", ["BTC/USDT"], 0n, 1000n * MIN)).toEqual([]);
  });
});
