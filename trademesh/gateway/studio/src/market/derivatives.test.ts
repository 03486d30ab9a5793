// market/derivatives: a derivative's mark, index, funding and open interest from the bridge's events.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { InstrumentKind } from "../gen/trademesh/common/v1/common_pb";
import { type MarketEvent, MarketEventSchema } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { DerivativesState, fundingRateText, isDerivative, noFigures, untilText } from "./derivatives";

type Payload = MessageInitShape<typeof MarketEventSchema>["payload"];

function event(tsEventNs: bigint, payload: Payload): MarketEvent {
  return create(MarketEventSchema, { venue: "sim", symbol: "BTC/USDT:USDT", tsEventNs, payload });
}

function mark(ts: bigint, markPrice: string, indexPrice = ""): MarketEvent {
  return event(ts, { case: "markPrice", value: { markPrice, indexPrice } });
}

function funding(ts: bigint, rate: string, nextFundingNs: bigint, markPrice = "", indexPrice = ""): MarketEvent {
  return event(ts, { case: "fundingRate", value: { rate, nextFundingNs, markPrice, indexPrice } });
}

describe("DerivativesState", () => {
  test("nothing is shown before the venue says it", () => {
    expect(new DerivativesState().figures).toEqual(noFigures());
  });

  test("a mark event sets the mark and index; a funding event its rate, next time and its mark", () => {
    const state = new DerivativesState();
    expect(state.apply(mark(10n, "65000.1", "64990.5"))).toBe(true);
    expect(state.apply(funding(20n, "0.0001", 1_700_000_000_000_000_000n, "65001.2"))).toBe(true);
    expect(state.figures).toMatchObject({
      mark: "65001.2",
      index: "64990.5", // the funding did not state one: the mark's stays
      fundingRate: "0.0001",
      nextFundingNs: 1_700_000_000_000_000_000n,
    });
  });

  test("an older funding event never puts back an older mark", () => {
    const state = new DerivativesState();
    state.apply(mark(30n, "65010"));
    state.apply(funding(20n, "0.0002", 0n, "65000"));
    expect(state.figures.mark).toBe("65010");
    expect(state.figures.fundingRate).toBe("0.0002");
  });

  test("open interest, with its value when stated; other events are not figures", () => {
    const state = new DerivativesState();
    const oi = event(5n, { case: "openInterest", value: { size: "1234.5", value: "80000000" } });
    expect(state.apply(oi)).toBe(true);
    expect(state.figures).toMatchObject({ openInterest: "1234.5", openInterestValue: "80000000" });
    const trade = event(6n, { case: "trade", value: { tradeId: "1", price: "1", size: "1" } });
    expect(state.apply(trade)).toBe(false);
  });
});

describe("fundingRateText", () => {
  test("a fraction as a percentage to 4 decimals, half away from zero, never through a float", () => {
    expect(fundingRateText("0.0001")).toBe("0.0100%");
    expect(fundingRateText("-0.00025")).toBe("-0.0250%");
    expect(fundingRateText("0.000123456")).toBe("0.0123%");
    expect(fundingRateText("0.00000001")).toBe("0.0000%");
    expect(fundingRateText("-0.0000000001")).toBe("0.0000%");
    expect(fundingRateText("0.75")).toBe("75.0000%");
    expect(fundingRateText("")).toBe("");
    expect(fundingRateText("n/a")).toBe("n/a");
  });
});

describe("untilText", () => {
  const now = 1_700_000_000_000;
  const at = (seconds: number): bigint => BigInt(now + seconds * 1000) * 1_000_000n;
  test("seconds, minutes, then hours and minutes; now once passed", () => {
    expect(untilText(at(42), now)).toBe("in 42 s");
    expect(untilText(at(17 * 60 + 5), now)).toBe("in 17 min");
    expect(untilText(at(2 * 3600 + 5 * 60), now)).toBe("in 2 h 05 min");
    expect(untilText(at(-3), now)).toBe("now");
  });
});

describe("isDerivative", () => {
  test("perpetuals, futures and options have derivatives streams; spot has none", () => {
    expect(isDerivative(InstrumentKind.PERPETUAL)).toBe(true);
    expect(isDerivative(InstrumentKind.FUTURE)).toBe(true);
    expect(isDerivative(InstrumentKind.SPOT)).toBe(false);
    expect(isDerivative(InstrumentKind.UNSPECIFIED)).toBe(false);
  });
});
