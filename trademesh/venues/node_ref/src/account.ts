// The account (balances and positions) to every StreamAccount caller: a snapshot first, then,
// each time the account changed, the balances and positions whose value changed (their new
// values; a subscriber behind gets its queued changes merged, the latest value of each winning).
// The account changes only with the venue's own executions (ACCOUNT_FEED_PUSH): each one
// touches the hub, which reads the account as GetBalances and GetPositions answer it and sends
// what differs from the last read. Reads happen only while someone listens.

import { create } from "@bufbuild/protobuf";
import { StreamAccountResponseSchema } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type {
  Balance as PbBalance,
  Position as PbPosition,
  StreamAccountResponse,
} from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import { ACCOUNT_QUEUE } from "./config.js";
import { balanceToPb, positionToPb } from "./convert.js";
import { ResourceExhausted } from "./errors.js";
import type { Balance, Position } from "./model.js";
import { endSubscribers, Outbox } from "./outbox.js";

const MERGE_MAX = 1000;

interface AccountState {
  balances: Map<string, PbBalance>;
  positions: Map<string, PbPosition>;
  asOfNs: bigint;
}

export interface AccountSource {
  balances(): Balance[];
  positions(): Position[];
  asOfNs(): bigint;
}

export class AccountSubscriber {
  readonly outbox = new Outbox<StreamAccountResponse>(ACCOUNT_QUEUE);

  async next(): Promise<StreamAccountResponse | null> {
    const batch = await this.outbox.take(MERGE_MAX);
    if (batch === null) {
      return null;
    }
    return batch.length === 1 ? batch[0]! : merged(batch);
  }
}

function merged(batch: StreamAccountResponse[]): StreamAccountResponse {
  const balances = new Map<string, PbBalance>();
  const positions = new Map<string, PbPosition>();
  for (const item of batch) {
    item.balances.forEach((b) => balances.set(b.asset, b));
    item.positions.forEach((p) => positions.set(p.symbol, p));
  }
  return create(StreamAccountResponseSchema, {
    balances: [...balances.keys()].sort().map((a) => balances.get(a)!),
    positions: [...positions.keys()].sort().map((s) => positions.get(s)!),
    asOfNs: batch[batch.length - 1]!.asOfNs,
  });
}

export class AccountHub {
  readonly subscribers = new Set<AccountSubscriber>();
  private last: AccountState | null = null;
  private scheduled = false;

  constructor(private readonly source: AccountSource) {}

  // A new subscriber and its snapshot; every change after the snapshot reaches it.
  subscribe(): [AccountSubscriber, StreamAccountResponse] {
    const state = this.read();
    const subscriber = new AccountSubscriber();
    if (this.subscribers.size === 0) {
      this.last = state;
    }
    this.subscribers.add(subscriber);
    return [subscriber, response(state, true)];
  }

  unsubscribe(subscriber: AccountSubscriber): void {
    this.subscribers.delete(subscriber);
    if (this.subscribers.size === 0) {
      this.last = null;
    }
  }

  // The account may have changed: read it once the current operation is over.
  touch(): void {
    if (this.subscribers.size === 0 || this.scheduled) {
      return;
    }
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.publish();
    });
  }

  endAll(): number {
    return endSubscribers(this.subscribers, (subscriber) => this.unsubscribe(subscriber));
  }

  private read(): AccountState {
    return {
      balances: new Map(this.source.balances().map((b) => [b.asset, balanceToPb(b)])),
      positions: new Map(this.source.positions().map((p) => [p.symbol, positionToPb(p)])),
      asOfNs: this.source.asOfNs(),
    };
  }

  private publish(): void {
    if (this.subscribers.size === 0 || this.last === null) {
      return;
    }
    const state = this.read();
    const changed = changes(this.last, state);
    this.last = state;
    if (changed === null) {
      return;
    }
    for (const subscriber of [...this.subscribers]) {
      if (!subscriber.outbox.offer(changed)) {
        this.subscribers.delete(subscriber);
        subscriber.outbox.end(new ResourceExhausted("account subscriber fell behind; open StreamAccount again"));
      }
    }
  }
}

function response(state: AccountState, snapshot: boolean): StreamAccountResponse {
  return create(StreamAccountResponseSchema, {
    snapshot,
    balances: [...state.balances.keys()].sort().map((a) => state.balances.get(a)!),
    positions: [...state.positions.keys()].sort().map((s) => state.positions.get(s)!),
    asOfNs: state.asOfNs,
  });
}

// What changed from `before` to `after`; null when nothing did.
function changes(before: AccountState, after: AccountState): StreamAccountResponse | null {
  const same = (a: PbBalance | PbPosition | undefined, b: PbBalance | PbPosition): boolean =>
    a !== undefined && JSON.stringify(a) === JSON.stringify(b);
  const balances = new Map([...after.balances].filter(([asset, b]) => !same(before.balances.get(asset), b)));
  const positions = new Map([...after.positions].filter(([symbol, p]) => !same(before.positions.get(symbol), p)));
  if (balances.size === 0 && positions.size === 0) {
    return null;
  }
  return response({ balances, positions, asOfNs: after.asOfNs }, false);
}
