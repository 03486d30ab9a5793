import { describe, expect, it } from "vitest";
import { Connection } from "../lib/connection";
import { PageLoops } from "./page-loops";

describe("PageLoops", () => {
  it("starts once until stopped, and stopping aborts the running loops' signal", () => {
    const loops = new PageLoops(new Connection(), new AbortController().signal);
    expect(loops.signal).toBeUndefined();
    const first = loops.start();
    expect(first).not.toBeNull();
    expect(loops.start()).toBeNull();
    expect(loops.signal).toBe(first);
    loops.stop();
    expect(first?.aborted).toBe(true);
    expect(loops.signal).toBeUndefined();
    const second = loops.start();
    expect(second).not.toBeNull();
    expect(second?.aborted).toBe(false);
  });

  it("restarts with a new signal, the old one aborted", () => {
    const loops = new PageLoops(new Connection(), new AbortController().signal);
    const first = loops.restart();
    const second = loops.restart();
    expect(first.aborted).toBe(true);
    expect(second.aborted).toBe(false);
    expect(loops.signal).toBe(second);
  });

  it("ends the loops with the session (the app's signal)", () => {
    const app = new AbortController();
    const loops = new PageLoops(new Connection(), app.signal);
    const signal = loops.start();
    app.abort();
    expect(signal?.aborted).toBe(true);
  });

  it("gives a loop its signal and the page's connection", () => {
    const connection = new Connection();
    const loops = new PageLoops(connection, new AbortController().signal);
    const signal = loops.restart();
    const context = loops.context(signal, {} as HTMLElement);
    expect(context.signal).toBe(signal);
    expect(context.connection).toBe(connection);
  });
});
