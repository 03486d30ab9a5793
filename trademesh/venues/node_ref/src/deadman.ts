// The dead-man switch: unless heartbeats keep coming, cancel what could open or add to a
// position. A trip keeps the reduce-only orders (a position's stop-loss and take-profit): the
// inspector that stopped heartbeating is the one that would place them again, so they must
// outlive it. The exchange is this process: there is no exchange-side switch to arm.

import { log } from "./log.js";
import type { Order } from "./model.js";

// What a protective cancel did: the orders it cancelled, the reduce-only ones it kept.
export interface Kept {
  canceled: Order[];
  kept: number;
}

export interface DeadManState {
  armed: boolean;
  ttlMs: number;
  deadlineNs: bigint;
  trips: bigint;
  lastTripNs: bigint;
  lastTripCanceled: number;
  lastTripKept: number;
}

export function deadManReason(ttlMs: number): string {
  return `dead-man: no heartbeat within ${ttlMs} ms; reduce-only orders kept`;
}

export class DeadMan {
  private ttlMs = 0;
  private deadlineMs = 0; // monotonic ms; 0 when disarmed
  private timer: NodeJS.Timeout | null = null;
  private trips = 0n;
  private lastTripNs = 0n;
  private lastTrip: Kept | null = null;

  constructor(
    // Cancels the openers, given the ttl that lapsed.
    private readonly trip: (ttlMs: number) => Kept,
    private readonly wallNs: () => bigint,
  ) {}

  // Arms for ttlMs from now (0 disarms).
  heartbeat(ttlMs: number): DeadManState {
    this.ttlMs = ttlMs;
    this.clear();
    if (ttlMs === 0) {
      this.deadlineMs = 0;
    } else {
      this.deadlineMs = performance.now() + ttlMs;
      this.timer = setTimeout(() => this.lapse(), ttlMs);
    }
    return this.state();
  }

  state(): DeadManState {
    const armed = this.deadlineMs > 0;
    const remainingNs = armed ? BigInt(Math.round((this.deadlineMs - performance.now()) * 1e6)) : 0n;
    return {
      armed,
      ttlMs: armed ? this.ttlMs : 0,
      deadlineNs: armed ? this.wallNs() + remainingNs : 0n,
      trips: this.trips,
      lastTripNs: this.lastTripNs,
      lastTripCanceled: this.lastTrip?.canceled.length ?? 0,
      lastTripKept: this.lastTrip?.kept ?? 0,
    };
  }

  stop(): void {
    this.clear();
    this.deadlineMs = 0;
  }

  private clear(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private lapse(): void {
    this.timer = null;
    this.deadlineMs = 0;
    this.trips += 1n;
    this.lastTripNs = this.wallNs();
    try {
      this.lastTrip = this.trip(this.ttlMs);
    } catch (error) {
      // A failed cancel must not take the venue down; the next trip tries again.
      log.error("dead-man switch tripped but its cancels failed", { error: String(error) });
      return;
    }
    log.warn("dead-man switch tripped", {
      ttl_ms: this.ttlMs,
      canceled: this.lastTrip.canceled.length,
      kept_reduce_only: this.lastTrip.kept,
    });
  }
}
