// lib/money: money rounded on its decimal text, never through a float.
import { describe, expect, test } from "vitest";
import { amountText, groupThousands, priceText, roundDecimal, sizeText, tickPlaces, trimZeros } from "./money";

describe("roundDecimal", () => {
  test("rounds half away from zero on the text", () => {
    expect(roundDecimal("1.005", 2)).toBe("1.01"); // 1.005 as a double is 1.00499...: a float rounds it down
    expect(roundDecimal("-1.005", 2)).toBe("-1.01");
    expect(roundDecimal("1.00499999999999999999", 2)).toBe("1.00");
  });

  test("carries through nines into the whole part", () => {
    expect(roundDecimal("9.995", 2)).toBe("10.00");
    expect(roundDecimal("999.5", 0)).toBe("1000");
    expect(roundDecimal("0.96", 1)).toBe("1.0");
  });

  test("pads to the places asked and keeps digits past a double's precision", () => {
    expect(roundDecimal("5", 2)).toBe("5.00");
    expect(roundDecimal("12345678901234567890.125", 2)).toBe("12345678901234567890.13");
  });

  test("shows no negative zero", () => {
    expect(roundDecimal("-0.004", 2)).toBe("0.00");
    expect(roundDecimal("-0", 0)).toBe("0");
  });

  test("leaves what is not a plain decimal as it is", () => {
    expect(roundDecimal("1e-8", 2)).toBe("1e-8");
    expect(roundDecimal("", 2)).toBe("");
    expect(roundDecimal("NaN", 2)).toBe("NaN");
  });
});

describe("the pieces", () => {
  test("trimZeros trims a fraction's zeros only", () => {
    expect(trimZeros("1.2300")).toBe("1.23");
    expect(trimZeros("5.000")).toBe("5");
    expect(trimZeros("500")).toBe("500");
  });

  test("groupThousands groups the whole part", () => {
    expect(groupThousands("-1234567.891")).toBe("-1,234,567.891");
    expect(groupThousands("999.5")).toBe("999.5");
    expect(groupThousands("1000")).toBe("1,000");
  });

  test("tickPlaces counts a tick's decimals", () => {
    expect(tickPlaces("0.01")).toBe(2);
    expect(tickPlaces("0.50")).toBe(1);
    expect(tickPlaces("10")).toBe(0);
    expect(tickPlaces("0.00001")).toBe(5);
    expect(tickPlaces("0")).toBeNull();
    expect(tickPlaces("")).toBeNull();
  });
});

describe("amountText", () => {
  test("a quote asset to the cent, trailing zeros kept", () => {
    expect(amountText("1000000.123456789012345", "USDT")).toBe("1,000,000.12");
    expect(amountText("12.5", "USD")).toBe("12.50");
    expect(amountText("-0.125", "usdc")).toBe("-0.13");
    expect(amountText("42.999", "")).toBe("43.00"); // no asset named: the quote asset
  });

  test("a coin to at most 8 decimals, trailing zeros trimmed", () => {
    expect(amountText("0.012345678912", "BTC")).toBe("0.01234568");
    expect(amountText("1.50000000000000", "ETH")).toBe("1.5");
    expect(amountText("1234", "SOL")).toBe("1,234");
  });

  test("a non-zero amount never reads as zero", () => {
    expect(amountText("0.0012", "USDT")).toBe("0.0012");
    expect(amountText("-0.000123456", "USDT")).toBe("-0.00012");
    expect(amountText("0.000000001234", "BTC")).toBe("0.0000000012");
    expect(amountText("0.000", "USDT")).toBe("0.00");
  });

  test("empty is a dash, anything else not a decimal as it came", () => {
    expect(amountText("", "USDT")).toBe("–");
    expect(amountText("n/a", "USDT")).toBe("n/a");
  });
});

describe("priceText", () => {
  test("at the decimals of the instrument's tick", () => {
    expect(priceText("65000.123456789", "0.01")).toBe("65,000.12");
    expect(priceText("65000.1", "0.01")).toBe("65,000.10");
    expect(priceText("1.23456", "0.0001")).toBe("1.2346");
    expect(priceText("101.26", "0.5")).toBe("101.3");
  });

  test("exact when the instrument is not known", () => {
    expect(priceText("65000.123456789", undefined)).toBe("65000.123456789");
    expect(priceText("65000.1", "")).toBe("65000.1");
    expect(priceText("", "0.01")).toBe("–");
  });
});

describe("sizeText", () => {
  test("at most 8 decimals, trailing zeros trimmed", () => {
    expect(sizeText("0.0100000000")).toBe("0.01");
    expect(sizeText("-2.5")).toBe("-2.5");
    expect(sizeText("0.123456789")).toBe("0.12345679");
  });
});
