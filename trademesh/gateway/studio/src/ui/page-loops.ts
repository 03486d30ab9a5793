// A page's loops (lib/loop): started together when the page is shown, all stopped when it is
// hidden (another page is shown, or the session ends), each reporting in its own panel's status.
import type { Connection } from "../lib/connection";
import { childController, type LoopContext } from "../lib/loop";
import { showStatus } from "./dom";

export class PageLoops {
  private controller: AbortController | null = null;

  /** `connection`: the gateway's, which every loop reports to; `appSignal`: the session's. */
  constructor(
    readonly connection: Connection,
    readonly appSignal: AbortSignal,
  ) {}

  /** The running loops' signal; undefined while the page is hidden. */
  get signal(): AbortSignal | undefined {
    return this.controller?.signal;
  }

  /** A new signal for the loops of the page being shown; null when they run already. */
  start(): AbortSignal | null {
    return this.controller === null ? this.restart() : null;
  }

  /** A new signal for the loops, the running ones (if any) aborted. */
  restart(): AbortSignal {
    this.stop();
    this.controller = childController(this.appSignal);
    return this.controller.signal;
  }

  /** Aborts the loops (the page is hidden). */
  stop(): void {
    this.controller?.abort();
    this.controller = null;
  }

  /** The context of a loop on `signal`, reporting in `status`. */
  context(signal: AbortSignal, status: HTMLElement): LoopContext {
    return { signal, connection: this.connection, onStatus: (s) => showStatus(status, s) };
  }
}
