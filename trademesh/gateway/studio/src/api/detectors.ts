// The detector instances Studio can show, and the one it shows. Several detectors may run, each
// its own process registered with the gateway under its name (`trademesh detector --instance
// NAME`); the registry lists them as the live instances serving the Patch service. The choice is
// the tab's: the Strategies page's picker sets it (and puts it in that page's URL), the page's
// lists and patch view, and the chart's signal markers on the trading page, call that instance.
// It is kept in sessionStorage, so a reload keeps it; until one is chosen, the first listed is.
import { Patch } from "../gen/trademesh/patch/v1/patch_pb";
import { type Clients, unary } from "./clients";

const STORAGE_KEY = "trademesh.detector";

/** The names of the live detector instances, sorted (the registry sorts by name), each once
 * (the replicas of one name are one instance to call: the gateway routes to its newest). */
export async function listDetectors(clients: Clients, signal: AbortSignal): Promise<string[]> {
  const reply = await clients.registry.listServices({ service: Patch.typeName }, unary(signal));
  return [...new Set(reply.instances.map((instance) => instance.name))];
}

export class DetectorChoice {
  private chosen: string | null = sessionStorage.getItem(STORAGE_KEY);
  private known: string[] = [];
  private readonly listeners = new Set<(name: string | null) => void>();

  /** The instance to call; null while none is known. */
  get name(): string | null {
    return this.chosen;
  }

  /** The instances last listed. */
  get names(): readonly string[] {
    return this.known;
  }

  /** Chooses `name` (a URL's or the picker's), told to every listener when it changes. */
  set(name: string): void {
    if (name === this.chosen) return;
    this.chosen = name;
    sessionStorage.setItem(STORAGE_KEY, name);
    for (const listener of this.listeners) listener(name);
  }

  /** The instances now registered; with none chosen yet, or the chosen one gone, the first. */
  listed(names: string[]): void {
    this.known = names;
    const first = names[0];
    if (first !== undefined && (this.chosen === null || !names.includes(this.chosen))) this.set(first);
  }

  /** Calls `listener` with each new choice until `signal` aborts. */
  onChange(listener: (name: string | null) => void, signal: AbortSignal): void {
    this.listeners.add(listener);
    signal.addEventListener("abort", () => this.listeners.delete(listener), { once: true });
  }
}
