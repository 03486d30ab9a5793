// Exponential backoff with jitter for reconnects: many tabs (or panels) that lost the gateway at
// the same moment should not all come back at the same instant.

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly firstMs = 500,
    private readonly maxMs = 15_000,
  ) {}

  /** The delay before the next attempt; grows with each failure. */
  next(): number {
    const base = Math.min(this.maxMs, this.firstMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  reset(): void {
    this.attempt = 0;
  }
}
