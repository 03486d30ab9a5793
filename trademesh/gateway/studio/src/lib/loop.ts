// The two ways a panel keeps its data current: polling a unary call, and following a stream.
// Both retry with backoff on failure, report what happened through onStatus, and stop when
// their signal aborts (the view changed or the session ended).
import { classify, isCanceled } from "../api/errors";
import { Backoff } from "./backoff";
import type { Connection } from "./connection";

export type Tone = "ok" | "warn" | "error";

export interface PanelStatus {
  tone: Tone;
  text: string;
}

export interface LoopContext {
  signal: AbortSignal;
  connection: Connection;
  onStatus: (status: PanelStatus) => void;
}

/** An AbortController that also aborts when `parent` does. */
export function childController(parent: AbortSignal): AbortController {
  const child = new AbortController();
  if (parent.aborted) child.abort();
  else parent.addEventListener("abort", () => child.abort(), { once: true });
  return child;
}

async function recover(ctx: LoopContext, error: unknown, backoff: Backoff, lost = false): Promise<void> {
  const failure = classify(error);
  const delayMs = backoff.next();
  if (failure.kind === "unreachable") ctx.connection.down(failure.message, delayMs);
  // An unauthenticated call already ended the session (see api/transport); this loop is aborted.
  if (failure.kind !== "unauthenticated") {
    const seconds = Math.max(1, Math.round(delayMs / 1000));
    // After a live stream ended, that stays the headline until it is live again.
    const text = lost
      ? `stream ended, reconnecting (${failure.message}; next try in ${seconds} s)`
      : `${failure.message}; retrying in ${seconds} s`;
    ctx.onStatus({ tone: "error", text });
  }
  await ctx.connection.sleep(delayMs, ctx.signal);
}

/** Runs `task` every intervalMs while the signal lives; failures back off, then retry. */
export async function poll(ctx: LoopContext, intervalMs: number, task: () => Promise<void>): Promise<void> {
  const backoff = new Backoff();
  while (!ctx.signal.aborted) {
    try {
      await task();
      ctx.connection.up();
      backoff.reset();
      ctx.onStatus({ tone: "ok", text: "live" });
      await ctx.connection.sleep(intervalMs, ctx.signal);
    } catch (error) {
      if (ctx.signal.aborted || isCanceled(error)) return;
      await recover(ctx, error, backoff);
    }
  }
}

/**
 * Follows a server stream: `open` starts a new subscription (called again after each end or
 * failure, so it must start fresh state) and calls `opened` once the stream is in place;
 * `onMessage` takes each message. A stream that ends while still wanted is reported as
 * "stream ended, reconnecting" and subscribed again.
 */
export async function follow<T>(
  ctx: LoopContext,
  open: (signal: AbortSignal, opened: () => void) => AsyncIterable<T>,
  onMessage: (message: T, index: number) => void | Promise<void>,
): Promise<void> {
  const backoff = new Backoff();
  let lost = false; // a live stream ended and is not live again yet
  const opened = (): void => {
    lost = false;
    ctx.connection.up();
    ctx.onStatus({ tone: "ok", text: "live" });
  };
  while (!ctx.signal.aborted) {
    let index = 0;
    try {
      for await (const message of open(ctx.signal, opened)) {
        if (index === 0) opened();
        await onMessage(message, index);
        index += 1;
        backoff.reset();
      }
      if (ctx.signal.aborted) return;
      lost = true;
      ctx.onStatus({ tone: "warn", text: "stream ended, reconnecting" });
      await ctx.connection.sleep(backoff.next(), ctx.signal);
    } catch (error) {
      if (ctx.signal.aborted || isCanceled(error)) return;
      lost ||= index > 0;
      await recover(ctx, error, backoff, lost);
    }
  }
}
