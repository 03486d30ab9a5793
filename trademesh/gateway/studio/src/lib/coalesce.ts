// A refresh asked for outside a page's loops' rhythm (after a command, a filter change, a burst
// of live events): asked for again while one runs, it runs once more after it, the asks in
// between folded into that one.

/** What one refresh does; undefined when there is nothing to refresh (the page is not shown). */
export type Refresh = () => Promise<unknown> | undefined;

export class CoalescedRefresh {
  private running = false;
  private again = false;

  /** `gapMs`: how long a refresh holds the next one back after it ends. */
  constructor(
    private readonly refresh: Refresh,
    private readonly gapMs = 0,
  ) {}

  /** One refresh now, or once more after the one running. Its failures are the loops' to report:
   * this extra refresh only hurries them. */
  async ask(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    const refreshing = this.refresh();
    if (refreshing === undefined) return;
    this.running = true;
    await refreshing.then(
      () => undefined,
      () => undefined,
    );
    if (this.gapMs > 0) await new Promise((resolve) => setTimeout(resolve, this.gapMs));
    this.running = false;
    if (this.again) {
      this.again = false;
      await this.ask();
    }
  }
}
