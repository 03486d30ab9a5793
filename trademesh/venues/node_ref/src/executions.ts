// Executions (order changes and fills) to every StreamExecutions caller.
//
// Every execution takes the next sequence of this process's counter (its epoch: the process's
// start time) and is kept, encoded, in a bounded history whether anyone listens or not. A caller
// that comes back with a resume point (epoch, position) first gets the executions after it, then
// live ones: it misses none and sees none twice. When the history no longer covers the point
// (another process, or more executions since than it keeps), the stream's first response says
// `gap` and the replay starts at the oldest execution held. Executions are never conflated: a
// subscriber a whole queue behind is ended (RESOURCE_EXHAUSTED) and must resume.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ExecutionSchema, StreamExecutionsResponseSchema } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type { Execution as PbExecution, StreamExecutionsResponse } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import { EXECUTION_BATCH_MAX, EXECUTION_HISTORY, EXECUTION_QUEUE } from "./config.js";
import { executionToPb } from "./convert.js";
import { ResourceExhausted } from "./errors.js";
import type { ResumePoint } from "./fanout.js";
import type { Execution } from "./model.js";
import { Outbox } from "./outbox.js";

export class ExecutionSubscriber {
  readonly outbox = new Outbox<PbExecution>(EXECUTION_QUEUE);
  // A resumed stream's first response: where the replay goes on from, and any gap.
  header: StreamExecutionsResponse | null = null;

  constructor(readonly symbols: ReadonlySet<string>) {}

  wants(symbol: string): boolean {
    return this.symbols.size === 0 || this.symbols.has(symbol);
  }

  async next(): Promise<PbExecution[] | null> {
    return this.outbox.take(EXECUTION_BATCH_MAX);
  }
}

interface Held {
  sequence: bigint;
  symbol: string;
  encoded: Uint8Array;
}

export class ExecutionHub {
  readonly subscribers = new Set<ExecutionSubscriber>();
  position = 0n;
  dropped = 0;
  // Oldest first; trimmed in chunks so a full history costs no shift per execution.
  private history: Held[] = [];

  constructor(
    readonly epoch: bigint,
    private readonly historySize = EXECUTION_HISTORY,
  ) {}

  // A new subscriber; resuming, its outbox first holds the replay (queued in the same step as it
  // joins, so no live execution falls between the two) and `header` is set.
  subscribe(symbols: ReadonlySet<string>, resume: ResumePoint | null): ExecutionSubscriber {
    const subscriber = new ExecutionSubscriber(symbols);
    if (resume !== null) {
      subscriber.header = this.replay(subscriber, resume);
    }
    this.subscribers.add(subscriber);
    return subscriber;
  }

  unsubscribe(subscriber: ExecutionSubscriber): void {
    this.subscribers.delete(subscriber);
  }

  publish(execution: Execution): void {
    this.position += 1n;
    const message = executionToPb(execution, this.position);
    this.history.push({
      sequence: this.position,
      symbol: execution.order.symbol,
      encoded: toBinary(ExecutionSchema, message),
    });
    if (this.history.length > this.historySize * 1.25) {
      this.history = this.history.slice(this.history.length - this.historySize);
    }
    for (const subscriber of [...this.subscribers]) {
      if (subscriber.wants(execution.order.symbol) && !subscriber.outbox.offer(message)) {
        this.drop(subscriber);
      }
    }
  }

  response(batch: PbExecution[]): StreamExecutionsResponse {
    return create(StreamExecutionsResponseSchema, {
      executions: batch,
      position: batch[batch.length - 1]!.sequence,
      epoch: this.epoch,
    });
  }

  endAll(): number {
    const ended = this.subscribers.size;
    for (const subscriber of this.subscribers) {
      subscriber.outbox.end();
    }
    this.subscribers.clear();
    return ended;
  }

  // The sequence of the oldest execution held (position + 1 when none is).
  oldest(): bigint {
    const held = this.held();
    return held.length > 0 ? held[0]!.sequence : this.position + 1n;
  }

  private held(): Held[] {
    const extra = this.history.length - this.historySize;
    return extra > 0 ? this.history.slice(extra) : this.history;
  }

  private replay(subscriber: ExecutionSubscriber, point: ResumePoint): StreamExecutionsResponse {
    const reason = this.gapReason(point);
    const after = reason !== "" ? this.oldest() - 1n : point.epoch === 0n ? 0n : point.position;
    let replayed = 0;
    for (const held of this.held()) {
      if (held.sequence > after && subscriber.wants(held.symbol)) {
        subscriber.outbox.put(fromBinary(ExecutionSchema, held.encoded));
        replayed += 1;
      }
    }
    // The replay does not count against the live queue (the history bounds it).
    subscriber.outbox.limit += replayed;
    return create(StreamExecutionsResponseSchema, {
      position: after,
      epoch: this.epoch,
      gap: reason !== "",
      gapReason: reason,
    });
  }

  // Why the executions after the point cannot all be sent; "" when they can.
  private gapReason(point: ResumePoint): string {
    if (point.epoch !== 0n && point.epoch !== this.epoch) {
      return (
        `cannot resume from execution ${point.position} of epoch ${point.epoch}: this venue process ` +
        `(epoch ${this.epoch}) did not make it; executions may be missing`
      );
    }
    const after = point.epoch === 0n ? 0n : point.position;
    if (after > this.position) {
      return `cannot resume from execution ${after}: this venue process (epoch ${this.epoch}) is at ${this.position}`;
    }
    if (after + 1n < this.oldest()) {
      return (
        `cannot resume from execution ${after}: this venue process (epoch ${this.epoch}) holds ` +
        `executions from ${this.oldest()} on; executions may be missing`
      );
    }
    return "";
  }

  private drop(subscriber: ExecutionSubscriber): void {
    this.dropped += 1;
    this.unsubscribe(subscriber);
    subscriber.outbox.end(
      new ResourceExhausted(
        `execution subscriber too slow: ${EXECUTION_QUEUE} executions queued; resume from the last ` +
          "execution seen (or re-read open orders) and subscribe again",
      ),
    );
  }
}
