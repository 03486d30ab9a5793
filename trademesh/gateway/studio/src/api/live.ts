// Every live panel of a tab on one stream: the gateway's multiplexer (trademesh.mux.v1.Mux).
// A browser keeps at most 6 HTTP/1.1 connections per origin and each open server stream holds
// one, so instead of a stream per panel the tab opens one Mux.Open stream, adds a subscription
// per panel with a unary Add (any server-streaming method of the mesh, its request encoded
// here) and removes it when the panel lets go. Each panel gets an async iterable of its own
// typed messages, decoded with the method's output schema.
//
// A subscription that ends (its End frame) ends that iterable: normally, or with the upstream's
// status as a ConnectError. When the Open stream itself ends, every subscription fails with its
// error (gateway unreachable, stopping, session expired), and the panels' loops resubscribe as
// they always did; the next subscription opens a new stream.
import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { type End, Mux } from "../gen/trademesh/mux/v1/mux_pb";

// Add and Remove are quick control calls: a hung one shows as an error, not a frozen panel.
const CONTROL_TIMEOUT_MS = 10_000;

// The frames already received are read one after the other as microtasks: the page neither draws
// nor takes a click between them. A tab behind its stream (a slow or loaded machine) froze until
// it caught up, and on a fast stream it never did (a navigation clicked then never happened). The
// reading gives the page a turn once it has run this long.
export const TURN_MS = 20;

/** Resolves in a task of its own (after the page's pending tasks: input, drawing), which a
 * hidden tab does not throttle as it does timers. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** A server-streaming method of a generated service, e.g. LiveData.method.subscribe. */
export type StreamMethod<I extends DescMessage, O extends DescMessage> = DescMethod & {
  methodKind: "server_streaming";
  input: I;
  output: O;
};

export interface SubscribeOptions {
  signal: AbortSignal;
  /** The instance to call (`x-trademesh-target`), e.g. a venue's name. */
  target?: string;
  /** Called once the subscription is in place (Add answered), before its first message. */
  onAdded?: () => void;
}

/** One subscription's messages, in order, until its end. */
class Inbox {
  private readonly items: Uint8Array[] = [];
  private ending: { error: unknown } | null = null;
  private wake: (() => void) | null = null;
  /** True once the gateway ended the subscription (its End frame, or the whole stream). */
  endedByGateway = false;

  push(message: Uint8Array): void {
    if (this.ending !== null) return;
    this.items.push(message);
    this.notify();
  }

  /** Ends the messages: normally when `error` is undefined, else by throwing it. */
  finish(error?: unknown): void {
    if (this.ending !== null) return;
    this.ending = { error };
    this.notify();
  }

  async *messages(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.items.shift();
      if (next !== undefined) yield next;
      else if (this.ending !== null) {
        if (this.ending.error !== undefined) throw this.ending.error;
        return;
      } else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** How an End frame ends the panel's messages: normally (OK), or with the upstream's status. */
function endError(end: End): ConnectError | undefined {
  return end.code === 0 ? undefined : new ConnectError(end.message, end.code as Code);
}

/** One Open stream and the subscriptions on it. */
class Session {
  private readonly inboxes = new Map<string, Inbox>();
  private failure: unknown = null;

  constructor(readonly id: string) {}

  get closed(): boolean {
    return this.failure !== null;
  }

  inbox(subscriptionId: string): Inbox {
    const inbox = new Inbox();
    if (this.failure !== null) {
      inbox.endedByGateway = true;
      inbox.finish(this.failure);
    } else this.inboxes.set(subscriptionId, inbox);
    return inbox;
  }

  forget(subscriptionId: string): void {
    this.inboxes.delete(subscriptionId);
  }

  data(subscriptionId: string, message: Uint8Array): void {
    this.inboxes.get(subscriptionId)?.push(message);
  }

  end(end: End): void {
    const inbox = this.inboxes.get(end.subscriptionId);
    if (inbox === undefined) return;
    this.inboxes.delete(end.subscriptionId);
    inbox.endedByGateway = true;
    inbox.finish(endError(end));
  }

  close(failure: unknown): void {
    this.failure = failure;
    for (const inbox of this.inboxes.values()) {
      inbox.endedByGateway = true;
      inbox.finish(failure);
    }
    this.inboxes.clear();
  }
}

/** Resolves with `promise`, or rejects as canceled once `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(new ConnectError("canceled", Code.Canceled));
    if (signal.aborted) abort();
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

export class LiveStreams {
  private session: Promise<Session> | null = null;
  private counter = 0;

  /** `signal` ends the tab's stream (the app's: logout, session end); `now` is the clock the
   * reader's turns are measured on (ms; a test gives its own). */
  constructor(
    private readonly mux: Client<typeof Mux>,
    private readonly signal: AbortSignal,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The messages of `method` called with `input`, until its end or options.signal aborts. */
  subscribe<I extends DescMessage, O extends DescMessage>(
    method: StreamMethod<I, O>,
    input: MessageInitShape<I>,
    options: SubscribeOptions,
  ): AsyncIterable<MessageShape<O>> {
    return { [Symbol.asyncIterator]: () => this.follow(method, input, options) };
  }

  private async *follow<I extends DescMessage, O extends DescMessage>(
    method: StreamMethod<I, O>,
    input: MessageInitShape<I>,
    options: SubscribeOptions,
  ): AsyncGenerator<MessageShape<O>> {
    const session = await abortable(this.open(), options.signal);
    const subscriptionId = `s${++this.counter}`;
    const inbox = session.inbox(subscriptionId);
    const abort = (): void => inbox.finish(new ConnectError("canceled", Code.Canceled));
    options.signal.addEventListener("abort", abort, { once: true });
    let added = false;
    try {
      const request = toBinary(method.input, create(method.input, input));
      const path = `${method.parent.typeName}/${method.name}`;
      const add = { sessionId: session.id, subscriptionId, method: path, target: options.target ?? "", request };
      // Not cancelled with the panel: an Add cancelled in flight may still take effect at the
      // gateway, after a Remove sent meanwhile found nothing (a leaked subscription). The Add
      // completes, and a panel gone meanwhile removes it at once (finally, below).
      await this.mux.add(add, { timeoutMs: CONTROL_TIMEOUT_MS });
      added = true;
      if (options.signal.aborted) return;
      options.onAdded?.();
      for await (const message of inbox.messages()) yield fromBinary(method.output, message);
    } finally {
      options.signal.removeEventListener("abort", abort);
      session.forget(subscriptionId);
      if (added && !inbox.endedByGateway && !session.closed) this.remove(session, subscriptionId);
    }
  }

  private remove(session: Session, subscriptionId: string): void {
    // Fire and forget: the panel has moved on, and a lost Remove ends with the stream anyway.
    const remove = { sessionId: session.id, subscriptionId };
    this.mux.remove(remove, { timeoutMs: CONTROL_TIMEOUT_MS }).catch(() => undefined);
  }

  /** The tab's session: the open one, or a new Open stream (shared by every caller meanwhile). */
  private open(): Promise<Session> {
    if (this.session === null) {
      const opening = new Promise<Session>((resolve, reject) => {
        void this.read(resolve, reject).finally(() => {
          if (this.session === opening) this.session = null;
        });
      });
      this.session = opening;
    }
    return this.session;
  }

  private async read(resolve: (session: Session) => void, reject: (error: unknown) => void): Promise<void> {
    let session: Session | null = null;
    let failure: unknown = new ConnectError("the gateway ended the live stream", Code.Unavailable);
    let turn = this.now();
    try {
      for await (const frame of this.mux.open({}, { signal: this.signal })) {
        if (this.now() - turn > TURN_MS) {
          await nextTurn();
          turn = this.now();
        }
        const body = frame.frame;
        if (body.case === "opened") {
          session = new Session(body.value.sessionId);
          resolve(session);
        } else if (session === null) {
          throw new ConnectError("the gateway's live stream did not start with its session", Code.Internal);
        } else if (body.case === "data") session.data(body.value.subscriptionId, body.value.message);
        else if (body.case === "end") session.end(body.value);
      }
    } catch (error) {
      failure = error;
    }
    if (session === null) reject(failure);
    else session.close(failure);
  }
}
