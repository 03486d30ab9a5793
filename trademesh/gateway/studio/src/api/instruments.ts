// The venues' instruments (MarketData.ListInstruments through the gateway, targeted at the
// venue, as the market view reads them), for showing a price at its instrument's tick
// (lib/money). One registry per session, shared by every page: a venue's list is asked for the
// first time a page looks up one of its markets, kept for a while, and asked again after that
// (or after a failure: a venue not in the mesh, such as a backtest's recorded one, has none,
// and its prices keep their exact text). Pages hear when a list arrives and draw again.
import type { Instrument } from "../gen/trademesh/common/v1/common_pb";
import { type Clients, unary } from "./clients";

// A venue's list is asked again after this long (a tick size changes rarely).
const KEPT_MS = 10 * 60_000;
// A venue that did not answer is asked again after this long.
const RETRY_MS = 30_000;

interface Entry {
  /** By canonical symbol. */
  instruments: Map<string, Instrument>;
  askedMs: number;
  /** The ask in flight, if any. */
  loading: Promise<void> | null;
}

export class Instruments {
  private readonly venues = new Map<string, Entry>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly clients: Clients,
    private readonly signal: AbortSignal,
  ) {}

  /** The tick size of `symbol` at `venue`; undefined while its venue's list is not known (it is
   * asked for: the listeners hear when it comes). */
  tick(venue: string, symbol: string): string | undefined {
    return this.instrument(venue, symbol)?.tickSize || undefined;
  }

  instrument(venue: string, symbol: string): Instrument | undefined {
    if (venue === "" || symbol === "") return undefined;
    const entry = this.venues.get(venue);
    this.askIfDue(venue, entry);
    return entry?.instruments.get(symbol);
  }

  /** Resolves once `venue`'s list is known or was asked for and not answered (for a view
   * drawn once, such as a backtest's round trips). */
  async ready(venue: string): Promise<void> {
    const entry = this.venues.get(venue);
    this.askIfDue(venue, entry);
    await this.venues.get(venue)?.loading;
  }

  /** `listener` is called each time a venue's list arrives, until `signal` aborts. */
  onLoad(listener: () => void, signal: AbortSignal): void {
    this.listeners.add(listener);
    signal.addEventListener("abort", () => this.listeners.delete(listener), { once: true });
  }

  private askIfDue(venue: string, entry: Entry | undefined): void {
    if ((entry !== undefined && entry.loading !== null) || this.signal.aborted) return;
    const waitMs = entry === undefined ? 0 : entry.instruments.size > 0 ? KEPT_MS : RETRY_MS;
    if (entry !== undefined && Date.now() - entry.askedMs < waitMs) return;
    const next: Entry = entry ?? { instruments: new Map(), askedMs: 0, loading: null };
    next.askedMs = Date.now();
    this.venues.set(venue, next);
    next.loading = this.load(venue, next);
  }

  private async load(venue: string, entry: Entry): Promise<void> {
    try {
      const reply = await this.clients.marketData.listInstruments({ symbols: [] }, unary(this.signal, venue));
      entry.instruments = new Map(reply.instruments.map((i) => [i.symbol, i]));
    } catch {
      return; // not known: prices stay exact; asked again after RETRY_MS
    } finally {
      entry.loading = null;
      entry.askedMs = Date.now();
    }
    for (const listener of this.listeners) listener();
  }
}

const registries = new WeakMap<Clients, Instruments>();

/** The session's registry (one per set of clients, which a session makes once). */
export function instrumentsOf(clients: Clients, signal: AbortSignal): Instruments {
  let registry = registries.get(clients);
  if (registry === undefined) {
    registry = new Instruments(clients, signal);
    registries.set(clients, registry);
  }
  return registry;
}
