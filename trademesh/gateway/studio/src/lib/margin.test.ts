// lib/margin: a position's leverage, margin ratio and distance to liquidation, on decimal text.
import { describe, expect, test } from "vitest";
import { MarginMode } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import {
  divideDecimal,
  distanceOf,
  hasMargin,
  LIQUIDATION_DANGER_BELOW,
  LIQUIDATION_SAFE_ABOVE,
  leverageText,
  liquidationDistance,
  liquidationTone,
  type MarginFigures,
  marginModeWord,
  marginShown,
  pastLiquidation,
  percentText,
} from "./margin";

function figures(over: Partial<MarginFigures>): MarginFigures {
  return {
    size: "0.1",
    mark: "",
    leverage: "",
    marginMode: MarginMode.UNSPECIFIED,
    marginRatio: "",
    liquidationPrice: "",
    distance: "",
    ...over,
  };
}

describe("divideDecimal", () => {
  test("divides exactly and rounds half away from zero", () => {
    expect(divideDecimal("6500", "65000", 6)).toBe("0.1");
    expect(divideDecimal("1", "3", 6)).toBe("0.333333");
    expect(divideDecimal("2", "3", 6)).toBe("0.666667");
    expect(divideDecimal("-2", "3", 2)).toBe("-0.67");
    expect(divideDecimal("0.0000005", "1", 6)).toBe("0.000001");
    expect(divideDecimal("0.00000049", "1", 6)).toBe("0");
  });

  test("keeps digits past a double's precision", () => {
    expect(divideDecimal("12345678901234567890.5", "0.5", 1)).toBe("24691357802469135781");
  });

  test("answers null for a zero divisor or text that is not a decimal", () => {
    expect(divideDecimal("1", "0", 6)).toBeNull();
    expect(divideDecimal("1", "0.000", 6)).toBeNull();
    expect(divideDecimal("NaN", "1", 6)).toBeNull();
    expect(divideDecimal("1", "", 6)).toBeNull();
    expect(divideDecimal("1e3", "1", 6)).toBeNull();
  });
});

describe("liquidationDistance", () => {
  test("is |mark - liquidation| / mark, for a long and a short alike", () => {
    expect(liquidationDistance("65000", "58500")).toBe("0.1"); // a long 10 % above its liquidation
    expect(liquidationDistance("65000", "71500")).toBe("0.1"); // a short 10 % below it
    expect(liquidationDistance("64000.5", "64000.5")).toBe("0");
    expect(liquidationDistance("3", "2")).toBe("0.333333");
  });

  test("is empty without both prices, or with a mark of zero, or text that is not a price", () => {
    expect(liquidationDistance("", "58500")).toBe("");
    expect(liquidationDistance("65000", "")).toBe("");
    expect(liquidationDistance("0", "1")).toBe("");
    expect(liquidationDistance("NaN", "1")).toBe("");
    expect(liquidationDistance("65000", "-1")).toBe("");
  });
});

describe("liquidationTone", () => {
  test("is safe above 20 %, near from 5 % to 20 %, danger below 5 %", () => {
    expect(LIQUIDATION_SAFE_ABOVE).toBe("0.2");
    expect(LIQUIDATION_DANGER_BELOW).toBe("0.05");
    expect(liquidationTone("0.5")).toBe("safe");
    expect(liquidationTone("0.200001")).toBe("safe");
    expect(liquidationTone("0.2")).toBe("near");
    expect(liquidationTone("0.1")).toBe("near");
    expect(liquidationTone("0.05")).toBe("near");
    expect(liquidationTone("0.049999")).toBe("danger");
    expect(liquidationTone("0")).toBe("danger");
  });

  test("is danger with the mark past the liquidation price, and none without a distance", () => {
    expect(liquidationTone("0.3", true)).toBe("danger");
    expect(liquidationTone("")).toBeNull();
    expect(liquidationTone("NaN")).toBeNull();
  });
});

describe("pastLiquidation", () => {
  test("is the mark at or past the liquidation price on the position's losing side", () => {
    expect(pastLiquidation(figures({ size: "0.1", mark: "58000", liquidationPrice: "58500" }))).toBe(true);
    expect(pastLiquidation(figures({ size: "0.1", mark: "58500", liquidationPrice: "58500" }))).toBe(true);
    expect(pastLiquidation(figures({ size: "0.1", mark: "59000", liquidationPrice: "58500" }))).toBe(false);
    expect(pastLiquidation(figures({ size: "-0.1", mark: "72000", liquidationPrice: "71500" }))).toBe(true);
    expect(pastLiquidation(figures({ size: "-0.1", mark: "70000", liquidationPrice: "71500" }))).toBe(false);
    expect(pastLiquidation(figures({ size: "0.1", mark: "", liquidationPrice: "58500" }))).toBe(false);
  });
});

describe("distanceOf", () => {
  test("takes the inspector's distance when it gave one, else reckons it", () => {
    expect(distanceOf(figures({ mark: "65000", liquidationPrice: "58500", distance: "0.1000" }))).toBe("0.1");
    expect(distanceOf(figures({ mark: "65000", liquidationPrice: "61750" }))).toBe("0.05");
    expect(distanceOf(figures({}))).toBe("");
  });
});

describe("texts", () => {
  test("leverage as a multiple", () => {
    expect(leverageText("10")).toBe("10×");
    expect(leverageText("12.50")).toBe("12.5×");
    expect(leverageText("")).toBe("");
    expect(leverageText("abc")).toBe("abc");
  });

  test("a fraction as a percentage on its text", () => {
    expect(percentText("0.1234")).toBe("12.3%");
    expect(percentText("0.1")).toBe("10.0%");
    expect(percentText("1")).toBe("100.0%");
    expect(percentText("0.00049", 2)).toBe("0.05%");
    expect(percentText("0.0123456789012345678", 3)).toBe("1.235%");
    expect(percentText("-0.05")).toBe("-5.0%");
    expect(percentText("")).toBe("");
    expect(percentText("NaN")).toBe("NaN"); // never made by Studio: the venue's own text, shown as sent
  });

  test("the margin mode in a word", () => {
    expect(marginModeWord(MarginMode.CROSS)).toBe("cross");
    expect(marginModeWord(MarginMode.ISOLATED)).toBe("isolated");
    expect(marginModeWord(MarginMode.UNSPECIFIED)).toBe("");
  });
});

describe("marginShown", () => {
  test("a leveraged long: its leverage, ratio, liquidation price and coloured distance", () => {
    const shown = marginShown(
      figures({
        size: "0.5",
        mark: "65000",
        leverage: "10",
        marginMode: MarginMode.ISOLATED,
        marginRatio: "0.0421",
        liquidationPrice: "58825.5",
      }),
    );
    expect(shown).toEqual({
      leverage: "10×",
      marginMode: "isolated",
      marginRatio: "4.2%",
      liquidationPrice: "58825.5",
      distance: "0.094992", // 6174.5 / 65000
      distanceText: "9.5%",
      tone: "near",
    });
  });

  test("a position 3 % from liquidation is in danger, one 40 % away safe", () => {
    expect(marginShown(figures({ mark: "100", liquidationPrice: "97", leverage: "25" })).tone).toBe("danger");
    expect(marginShown(figures({ mark: "100", liquidationPrice: "60", leverage: "2" })).tone).toBe("safe");
  });

  test("a spot position shows nothing extra, never NaN", () => {
    const spot = figures({ size: "0.01" });
    expect(hasMargin(spot)).toBe(false);
    const shown = marginShown(spot);
    expect(shown).toEqual({
      leverage: "",
      marginMode: "",
      marginRatio: "",
      liquidationPrice: "",
      distance: "",
      distanceText: "",
      tone: null,
    });
    expect(JSON.stringify(shown)).not.toContain("NaN");
  });

  test("a flat position (size 0) shows nothing, though the venue states its symbol's leverage", () => {
    const flat = figures({ size: "0.000", mark: "61000", leverage: "20", marginMode: MarginMode.ISOLATED });
    const shown = marginShown(flat);
    expect(shown.leverage).toBe("");
    expect(shown.marginMode).toBe("");
    expect(shown.tone).toBeNull();
  });

  test("a perpetual the venue gives no liquidation price for shows its leverage and no distance", () => {
    const shown = marginShown(figures({ mark: "65000", leverage: "1", marginRatio: "0.004" }));
    expect(shown.leverage).toBe("1×");
    expect(shown.marginRatio).toBe("0.4%");
    expect(shown.distanceText).toBe("");
    expect(shown.tone).toBeNull();
  });
});
