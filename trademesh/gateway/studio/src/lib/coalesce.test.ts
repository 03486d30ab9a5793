import { describe, expect, it } from "vitest";
import { CoalescedRefresh } from "./coalesce";

/** A refresh the test ends by hand: each call waits until `finish` is called. */
function held(): { calls: number; refresh: () => Promise<void>; finish: () => void } {
  const ends: (() => void)[] = [];
  const state = {
    calls: 0,
    refresh: () => {
      state.calls += 1;
      return new Promise<void>((resolve) => ends.push(resolve));
    },
    finish: () => ends.shift()?.(),
  };
  return state;
}

/** Lets the awaited promises settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
}

describe("CoalescedRefresh", () => {
  it("runs once more after the running refresh however often it was asked for meanwhile", async () => {
    const work = held();
    const coalesced = new CoalescedRefresh(work.refresh);
    const first = coalesced.ask();
    void coalesced.ask();
    void coalesced.ask();
    expect(work.calls).toBe(1);
    work.finish();
    await settle();
    expect(work.calls).toBe(2);
    work.finish();
    await first;
    expect(work.calls).toBe(2);
  });

  it("runs nothing and holds nothing back when there is nothing to refresh", async () => {
    let calls = 0;
    const coalesced = new CoalescedRefresh(() => {
      calls += 1;
      return undefined;
    });
    await coalesced.ask();
    await coalesced.ask();
    expect(calls).toBe(2);
  });

  it("swallows a failed refresh and refreshes again when asked", async () => {
    let calls = 0;
    const coalesced = new CoalescedRefresh(() => {
      calls += 1;
      return Promise.reject(new Error("unreachable"));
    });
    await coalesced.ask();
    await coalesced.ask();
    expect(calls).toBe(2);
  });
});
