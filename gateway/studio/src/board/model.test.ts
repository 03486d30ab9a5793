// board/model: the newest ticker per symbol, its change since the board opened, its 24h volume.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { TickerSchema } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { Board, type BoardRow, symbolAssets, volume24h } from "./model";

function ticker(last: string, baseVolume24h = "", quoteVolume24h = "") {
  return create(TickerSchema, { bestBid: last, bestAsk: last, lastPrice: last, baseVolume24h, quoteVolume24h });
}

function row(symbol: string, baseVolume: string, quoteVolume: string): BoardRow {
  const board = new Board();
  board.ticker("v", symbol, 1n, ticker("1", baseVolume, quoteVolume));
  const [taken] = board.takeChanged();
  if (taken === undefined) throw new Error("no row");
  return taken;
}

describe("Board", () => {
  test("keeps the newest ticker of a symbol, its volumes, and its change since the first", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 1n, ticker("65000.5", "10", "650005"));
    board.ticker("sim", "BTC/USDT", 3n, ticker("65010.75", "12.5", "812634.375"));
    board.ticker("sim", "BTC/USDT", 2n, ticker("1", "1", "1")); // older than the one kept
    const [shown, ...more] = board.takeChanged();
    expect(more).toEqual([]);
    expect(shown).toMatchObject({ last: "65010.75", opening: "65000.5", change: "10.25" });
    expect(shown).toMatchObject({ baseVolume: "12.5", quoteVolume: "812634.375" });
    expect(board.takeChanged()).toEqual([]);
  });

  test("touchAll draws every row again at the next frame", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 1n, ticker("1"));
    board.ticker("okx", "ETH/USDT", 1n, ticker("2"));
    board.takeChanged();
    board.touchAll();
    expect(board.takeChanged().map((r) => r.symbol).sort()).toEqual(["BTC/USDT", "ETH/USDT"]);
  });
});

describe("symbolAssets", () => {
  test("the base and quote of a unified symbol", () => {
    expect(symbolAssets("BTC/USDT")).toEqual({ base: "BTC", quote: "USDT" });
    expect(symbolAssets("ETH/USDT:USDT")).toEqual({ base: "ETH", quote: "USDT" });
    expect(symbolAssets("BTC/USD:BTC-250328")).toEqual({ base: "BTC", quote: "USD" });
    expect(symbolAssets("BTCUSDT")).toEqual({ base: "", quote: "" });
  });
});

describe("volume24h", () => {
  test("in the quote asset when the venue states it, else in the base asset", () => {
    expect(volume24h(row("BTC/USDT", "12.5", "812634.375"))).toEqual({ value: "812634.375", asset: "USDT" });
    expect(volume24h(row("BTC/USD", "12.5", ""))).toEqual({ value: "12.5", asset: "BTC" });
    expect(volume24h(row("BTC/USDT", "", ""))).toEqual({ value: "", asset: "" });
  });
});
