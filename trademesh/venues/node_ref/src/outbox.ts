// A client stream's outbox: a bounded queue that ends cleanly (after what is queued) or at once
// with an error, drained by the stream's writer at the pace its client reads.

import type { VenueError } from "./errors.js";

export class Outbox<T> {
  private items: T[] = [];
  private ended = false;
  private error: VenueError | null = null;
  private wake: (() => void) | null = null;

  constructor(public limit: number) {}

  get depth(): number {
    return this.items.length;
  }

  get closed(): boolean {
    return this.ended;
  }

  // Queues an item; false when the outbox is full.
  offer(item: T): boolean {
    if (this.items.length >= this.limit) {
      return false;
    }
    this.put(item);
    return true;
  }

  // Queues past the bound (a resumed stream's replay, bounded by the venue's history).
  put(item: T): void {
    if (!this.ended) {
      this.items.push(item);
      this.notify();
    }
  }

  // Drops everything queued and queues this instead.
  replace(item: T): void {
    this.items = [];
    this.put(item);
  }

  end(error: VenueError | null = null): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.error = error;
    if (error !== null) {
      this.items = [];
    }
    this.notify();
  }

  // Up to `most` queued items, waiting for one; null once ended and drained. Throws the error
  // the outbox was ended with.
  async take(most: number): Promise<T[] | null> {
    while (this.items.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    if (this.error !== null) {
      throw this.error;
    }
    if (this.items.length === 0) {
      return null;
    }
    return this.items.splice(0, most);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** Ends each subscriber's outbox cleanly (after what is queued) and lets `unsubscribe` forget it;
 * how many there were. */
export function endSubscribers<S extends { readonly outbox: { end(): void } }>(
  subscribers: Set<S>,
  unsubscribe: (subscriber: S) => void,
): number {
  const ended = subscribers.size;
  for (const subscriber of [...subscribers]) {
    subscriber.outbox.end();
    unsubscribe(subscriber);
  }
  return ended;
}
