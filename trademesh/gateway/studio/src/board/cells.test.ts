// board/cells: a board row's figures as read, each with the exact value behind it.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { TickerSchema } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { change24hText, changeText, rowCells, volumeText } from "./cells";
import { Board, type BoardRow } from "./model";

/** The row of `symbol` after tickers with these last prices (bid and ask about it), the last
 * with these volumes. */
function row(symbol: string, lasts: string[], baseVolume = "", quoteVolume = ""): BoardRow {
  const board = new Board();
  lasts.forEach((last, i) => {
    const volumes = i === lasts.length - 1 ? { baseVolume24h: baseVolume, quoteVolume24h: quoteVolume } : {};
    const ticker = create(TickerSchema, { bestBid: `${last}1`, bestAsk: `${last}9`, lastPrice: last, ...volumes });
    board.ticker("sim", symbol, BigInt(i + 1), ticker);
  });
  const [taken] = board.takeChanged();
  if (taken === undefined) throw new Error("no row");
  return taken;
}

describe("change24hText", () => {
  test("the change over 24 h at the tick, signed, with its percentage; a dash until known", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 1n, create(TickerSchema, { lastPrice: "66300.004" }));
    const [before] = board.takeChanged();
    expect(change24hText(before as BoardRow, "0.01")).toBe("–");
    board.reference("sim", "BTC/USDT", "65000", 1n);
    const [row] = board.takeChanged();
    expect(change24hText(row as BoardRow, "0.01")).toBe("+1,300.00 (+2.00%)");
    expect(rowCells(row as BoardRow, "0.01").change24h).toEqual({
      shown: "+1,300.00 (+2.00%)",
      exact: "1300.004",
      kind: "change",
    });
  });
});

describe("rowCells", () => {
  test("prices at the tick, each with its exact text", () => {
    const cells = rowCells(row("BTC/USDT", ["65000.123456"]), "0.01");
    expect(cells.bid).toEqual({ shown: "65,000.12", exact: "65000.1234561", kind: "price" });
    expect(cells.ask).toEqual({ shown: "65,000.12", exact: "65000.1234569", kind: "price" });
    expect(cells.last).toEqual({ shown: "65,000.12", exact: "65000.123456", kind: "price" });
  });

  test("prices exact while the tick is not known", () => {
    const cells = rowCells(row("BTC/USDT", ["65000.123456"]), undefined);
    expect(cells.last.shown).toBe("65000.123456");
  });

  test("the volume rounded in its asset, the exact one kept", () => {
    const cells = rowCells(row("BTC/USDT", ["1"], "12.3456789", "1234567.891234567"), "0.01");
    expect(cells.volume).toEqual({ shown: "1,234,567.89 USDT", exact: "1234567.891234567", kind: "amount" });
  });

  test("no figure reads as a dash with no exact value", () => {
    const cells = rowCells(row("BTC/USDT", [""]), "0.01");
    expect(cells.last).toEqual({ shown: "–", exact: "", kind: "price" });
    expect(cells.change).toEqual({ shown: "–", exact: "", kind: "change" });
    expect(cells.volume).toEqual({ shown: "–", exact: "", kind: "amount" });
  });
});

describe("changeText", () => {
  test("signed, at the tick, with its percentage", () => {
    expect(changeText(row("BTC/USDT", ["65000", "65650.004"]), "0.01")).toBe("+650.00 (+1.00%)");
    expect(changeText(row("BTC/USDT", ["65000", "64350"]), "0.01")).toBe("-650.00 (-1.00%)");
    expect(changeText(row("BTC/USDT", ["65000", "65650.004"]), undefined)).toBe("+650.004 (+1.00%)");
  });

  test("a dash before a change is known", () => {
    expect(changeText(row("BTC/USDT", [""]), "0.01")).toBe("–");
  });
});

describe("volumeText", () => {
  test("the quote volume to the cent, a base volume to at most 8 decimals", () => {
    expect(volumeText(row("ETH/USDT:USDT", ["1"], "5", "17500.005"))).toBe("17,500.01 USDT");
    expect(volumeText(row("BTC/USD", ["1"], "1234.123456789", ""))).toBe("1,234.12345679 BTC");
    expect(volumeText(row("BTC/USD", ["1"]))).toBe("–");
  });
});
