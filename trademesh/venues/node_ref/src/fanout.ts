// A venue's market events to its Subscribe streams: each dispatch is numbered (the venue's
// position, in this process's epoch) and kept a while, and each subscriber gets the routes it
// follows through its own bounded queue.
//
// Events arrive encoded per route as SubscribeResponse messages; serialized SubscribeResponses
// concatenate into one (repeated events append, the last position and epoch win), so a
// subscriber's batch is a byte join and the venue encodes each event once. A subscriber that
// falls behind gets its queued batches joined (JOIN_MOST, JOIN_BYTES); one whose queue is full
// is ended (RESOURCE_EXHAUSTED) or, asking OVERFLOW_POLICY_CONFLATE, gets a GAP notice and fresh
// snapshots instead of what it missed. A subscriber that comes back with a resume point still
// held gets what it missed first, then live events: nothing lost, nothing repeated.

import { toBinary, create } from "@bufbuild/protobuf";
import { SubscribeResponseSchema } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import {
  JOIN_BYTES,
  JOIN_MOST,
  MARKET_QUEUE_BATCHES,
  REPLAY_MESSAGE_BYTES,
  RESUME_MAX_BYTES,
  RESUME_WINDOW_S,
} from "./config.js";
import { ResourceExhausted } from "./errors.js";
import type { Channel, Timeframe } from "./model.js";
import { endSubscribers, Outbox } from "./outbox.js";

// Where an event goes: symbol, channel and (candles only) timeframe.
export type Route = string;

export function route(symbol: string, channel: Channel, timeframe: Timeframe | null = null): Route {
  return `${symbol}\u0000${channel}\u0000${timeframe ?? ""}`;
}

export function routeParts(key: Route): [string, Channel] {
  const [symbol, channel] = key.split("\u0000");
  return [symbol!, channel as Channel];
}

export interface ResumePoint {
  epoch: bigint;
  position: bigint;
}

interface Sent {
  position: bigint;
  atMs: number;
  batches: Map<Route, Uint8Array>;
  size: number;
}

export class History {
  readonly epoch: bigint;
  position = 0n;
  private readonly sent: Sent[] = [];
  private bytes = 0;

  constructor(
    epoch: bigint,
    private readonly windowS = RESUME_WINDOW_S,
    private readonly maxBytes = RESUME_MAX_BYTES,
    private readonly clockMs: () => number = () => performance.now(),
  ) {
    this.epoch = epoch;
  }

  // Numbers this dispatch; the trailer (position and epoch) to append to each batch of it.
  record(batches: Map<Route, Uint8Array>): Uint8Array {
    this.position += 1n;
    if (this.windowS > 0) {
      const size = [...batches.values()].reduce((total, b) => total + b.length, 0);
      this.sent.push({ position: this.position, atMs: this.clockMs(), batches, size });
      this.bytes += size;
      this.trim();
    }
    return this.trailer(this.position);
  }

  trailer(position: bigint): Uint8Array {
    return toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { position, epoch: this.epoch }));
  }

  // True when everything sent after the point is still held.
  canResume(point: ResumePoint): boolean {
    if (point.epoch !== this.epoch || point.position > this.position) {
      return false;
    }
    const oldest = this.sent.length > 0 ? this.sent[0]!.position : this.position + 1n;
    return point.position + 1n >= oldest;
  }

  // The batches sent after the point on these routes, as SubscribeResponse messages.
  *replay(point: ResumePoint, routes: ReadonlySet<Route>): Generator<Uint8Array> {
    let parts: Uint8Array[] = [];
    let size = 0;
    let last = point.position;
    for (const sent of this.sent) {
      if (sent.position <= point.position) {
        continue;
      }
      for (const [key, encoded] of sent.batches) {
        if (routes.has(key)) {
          parts.push(encoded);
          size += encoded.length;
          last = sent.position;
        }
      }
      if (size >= REPLAY_MESSAGE_BYTES) {
        yield Buffer.concat([...parts, this.trailer(last)]);
        parts = [];
        size = 0;
      }
    }
    if (parts.length > 0) {
      yield Buffer.concat([...parts, this.trailer(last)]);
    }
  }

  private trim(): void {
    const horizon = this.clockMs() - this.windowS * 1000;
    while (this.sent.length > 0 && (this.sent[0]!.atMs < horizon || this.bytes > this.maxBytes)) {
      this.bytes -= this.sent.shift()!.size;
    }
  }
}

export class MarketSubscriber {
  readonly outbox = new Outbox<Uint8Array>(MARKET_QUEUE_BATCHES);
  conflations = 0;

  constructor(
    readonly routes: ReadonlySet<Route>,
    readonly conflate: boolean,
  ) {}

  // The next messages: what is queued, joined up to JOIN_MOST batches a take, in messages of at
  // most JOIN_BYTES (a batch over the bound alone); null once the stream ended.
  async next(): Promise<Uint8Array[] | null> {
    const items = await this.outbox.take(JOIN_MOST);
    if (items === null) {
      return null;
    }
    const messages: Uint8Array[] = [];
    let part: Uint8Array[] = [];
    let size = 0;
    for (const item of items) {
      if (part.length > 0 && size + item.length > JOIN_BYTES) {
        messages.push(Buffer.concat(part));
        part = [];
        size = 0;
      }
      part.push(item);
      size += item.length;
    }
    messages.push(part.length === 1 ? part[0]! : Buffer.concat(part));
    return messages;
  }
}

export class MarketFanout {
  readonly subscribers = new Set<MarketSubscriber>();
  private readonly index = new Map<Route, Set<MarketSubscriber>>();
  dropped = 0;
  conflated = 0;

  constructor(
    readonly history: History,
    // What a conflated subscriber gets for a route instead of what it missed.
    private readonly recover: (key: Route) => Uint8Array,
  ) {}

  // A new subscriber: `initial` first (notices, snapshots), or, resuming, `initial` then what it
  // missed since the point (the caller checked canResume).
  subscribe(
    routes: ReadonlySet<Route>,
    conflate: boolean,
    initial: Uint8Array,
    resume: ResumePoint | null,
  ): MarketSubscriber {
    const subscriber = new MarketSubscriber(routes, conflate);
    if (resume !== null) {
      if (initial.length > 0) {
        subscriber.outbox.put(initial);
      }
      for (const message of this.history.replay(resume, routes)) {
        subscriber.outbox.put(message);
      }
      // The replay does not count against the live queue (the history bounds it).
      subscriber.outbox.limit += subscriber.outbox.depth;
    } else if (initial.length > 0) {
      subscriber.outbox.put(Buffer.concat([initial, this.history.trailer(this.history.position)]));
    }
    for (const key of routes) {
      let members = this.index.get(key);
      if (members === undefined) {
        members = new Set();
        this.index.set(key, members);
      }
      members.add(subscriber);
    }
    this.subscribers.add(subscriber);
    return subscriber;
  }

  unsubscribe(subscriber: MarketSubscriber): void {
    this.subscribers.delete(subscriber);
    for (const key of subscriber.routes) {
      const members = this.index.get(key);
      members?.delete(subscriber);
      if (members !== undefined && members.size === 0) {
        this.index.delete(key);
      }
    }
  }

  count(key: Route): number {
    return this.index.get(key)?.size ?? 0;
  }

  // Sends each subscriber one batch: the join of its routes' encoded responses.
  dispatch(pending: Map<Route, Uint8Array>): void {
    const trailer = this.history.record(pending);
    const batches = new Map<MarketSubscriber, Uint8Array[]>();
    for (const [key, encoded] of pending) {
      for (const subscriber of this.index.get(key) ?? []) {
        const parts = batches.get(subscriber);
        if (parts === undefined) {
          batches.set(subscriber, [encoded]);
        } else {
          parts.push(encoded);
        }
      }
    }
    for (const [subscriber, parts] of batches) {
      parts.push(trailer);
      if (!subscriber.outbox.offer(Buffer.concat(parts))) {
        this.overflow(subscriber);
      }
    }
  }

  endAll(): number {
    return endSubscribers(this.subscribers, (subscriber) => this.unsubscribe(subscriber));
  }

  private overflow(subscriber: MarketSubscriber): void {
    if (subscriber.conflate) {
      this.conflated += 1;
      subscriber.conflations += 1;
      const recovery = [...subscriber.routes].sort().map((key) => this.recover(key));
      subscriber.outbox.replace(Buffer.concat([...recovery, this.history.trailer(this.history.position)]));
      return;
    }
    this.dropped += 1;
    this.unsubscribe(subscriber);
    subscriber.outbox.end(
      new ResourceExhausted(
        `subscriber too slow: its queue of ${MARKET_QUEUE_BATCHES} batches is full; ` +
          "read faster, subscribe to less, or use OVERFLOW_POLICY_CONFLATE",
      ),
    );
  }
}
