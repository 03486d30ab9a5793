import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  AddResponseSchema,
  Mux,
  type OpenResponse,
  OpenResponseSchema,
  RemoveResponseSchema,
} from "../gen/trademesh/mux/v1/mux_pb";
import { LiveStreams, TURN_MS } from "./live";

const FRAMES = 40;
const HANDLING_MS = 2; // each frame's handling: 80 ms for them all, four turns' worth

/** The reader's clock, moved only by the frames' handling: the turns it gives do not depend on
 * how busy the machine running the test is (a loaded one delayed the stream's start past a turn). */
class Clock {
  ms = 0;
  readonly now = (): number => this.ms;
}

function data(): OpenResponse {
  const frame = { case: "data" as const, value: { subscriptionId: "s1", message: new Uint8Array() } };
  return create(OpenResponseSchema, { frame });
}

/** The gateway's Mux as the tab's client sees it, the frames of subscription s1 already
 * received (a tab behind its stream): they all arrive without a task between them. */
function behindMux(): Client<typeof Mux> {
  let added: () => void = () => undefined;
  const subscribed = new Promise<void>((resolve) => (added = resolve));
  const mux = {
    async *open(_request: unknown, options: { signal: AbortSignal }): AsyncGenerator<OpenResponse> {
      yield create(OpenResponseSchema, { frame: { case: "opened", value: { sessionId: "tab" } } });
      await subscribed;
      for (let n = 0; n < FRAMES; n += 1) yield data();
      await new Promise((resolve) => options.signal.addEventListener("abort", resolve));
    },
    async add() {
      added();
      return create(AddResponseSchema);
    },
    async remove() {
      return create(RemoveResponseSchema);
    },
  };
  return mux as unknown as Client<typeof Mux>;
}

describe("LiveStreams", () => {
  it("gives the page a turn while it reads frames already received", async () => {
    const tab = new AbortController();
    const clock = new Clock();
    const live = new LiveStreams(behindMux(), tab.signal, clock.now);
    let handled = 0;
    let handledAtTurn = -1;
    setTimeout(() => (handledAtTurn = handled), 0); // the page's next task: a click, a drawing
    for await (const _ of live.subscribe(Mux.method.open, {}, { signal: tab.signal })) {
      clock.ms += HANDLING_MS; // a panel drawing what a frame says
      handled += 1;
      if (handled === FRAMES) break;
    }
    tab.abort();
    expect(handled).toBe(FRAMES);
    // The page had its turn while the frames were read (with the reader's first or second turn,
    // as the runtime orders a timer and a message; the first comes once the reader has run past
    // TURN_MS: 11 handlings), not before the reader ran that long, nor only once all were read.
    expect(handledAtTurn).toBeGreaterThanOrEqual(Math.floor(TURN_MS / HANDLING_MS) + 1);
    expect(handledAtTurn).toBeLessThan(FRAMES);
  });
});
