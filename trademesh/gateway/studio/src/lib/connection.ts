// Whether the gateway answers, as every panel's calls see it. A failed call marks it down (the
// banner shows why and when the next try is); any answer marks it up. "Retry now" wakes every
// loop that is waiting out a backoff, so all panels reconnect at once.

export interface ConnectionState {
  down: boolean;
  reason: string;
  retryAtMs: number;
}

type Listener = (state: ConnectionState) => void;

export class Connection {
  private state: ConnectionState = { down: false, reason: "", retryAtMs: 0 };
  private readonly listeners = new Set<Listener>();
  private readonly waiters = new Set<() => void>();

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    listener(this.state);
    return () => this.listeners.delete(listener);
  }

  down(reason: string, retryInMs: number): void {
    const retryAtMs = Date.now() + retryInMs;
    // Several loops fail together: show the soonest retry among them.
    const soonest = this.state.down ? Math.min(this.state.retryAtMs, retryAtMs) : retryAtMs;
    this.set({ down: true, reason, retryAtMs: soonest });
  }

  up(): void {
    if (this.state.down) this.set({ down: false, reason: "", retryAtMs: 0 });
  }

  retryNow(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Waits `ms`, or less when retryNow() is called or `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private set(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }
}
