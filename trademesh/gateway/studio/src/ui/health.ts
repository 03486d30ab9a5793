// The venue health board: every registered venue's state and, per upstream stream, its state,
// events/s, last-message age and reconnects. Polled; a venue that does not answer says why. A
// paper venue (the registry's Instance.paper, its status's paper) carries a PAPER badge.
import { type Clients, unary } from "../api/clients";
import { classify } from "../api/errors";
import { listVenues } from "../api/venues";
import { type GetStatusResponse, StreamState, VenueState } from "../gen/trademesh/admin/v1/admin_pb";
import { Channel } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import type { Instance } from "../gen/trademesh/registry/v1/registry_pb";
import { age, label, rate } from "../lib/format";
import { type LoopContext, poll } from "../lib/loop";
import { fill, h, panel, table } from "./dom";

const POLL_MS = 2000;

type Answer = { instance: Instance } & ({ status: GetStatusResponse } | { error: string });

function streamRow(stream: GetStatusResponse["streams"][number]): HTMLElement {
  const state = label(StreamState, stream.state);
  return h(
    "tr",
    { "data-stream-state": state },
    h("td", {}, stream.symbol),
    h("td", {}, label(Channel, stream.channel)),
    h("td", { class: `state state-${state.replaceAll(" ", "-")}` }, state),
    h("td", { class: "num" }, rate(stream.eventsPerS)),
    h("td", { class: "num" }, age(stream.lastEventAgeMs)),
    h("td", { class: "num" }, String(stream.reconnects)),
  );
}

function summary(status: GetStatusResponse): string {
  const connected = status.streams.filter((s) => s.state === StreamState.CONNECTED).length;
  const perSecond = status.streams.reduce((sum, s) => sum + s.eventsPerS, 0);
  const reconnects = status.streams.reduce((sum, s) => sum + s.reconnects, 0n);
  const streams = `${connected}/${status.streams.length} streams connected`;
  return `${streams} · ${rate(perSecond)} events/s · ${reconnects} reconnects`;
}

/** Where the venue serves and how fresh its registration is (the gateway's clock vs ours). */
function registration(instance: Instance): HTMLElement {
  const sinceMs = BigInt(Date.now()) - instance.lastHeartbeatNs / 1_000_000n;
  const freshness = instance.configured ? "configured route" : `heartbeat ${age(sinceMs < 0n ? 0n : sinceMs)} ago`;
  return h("span", { class: "where" }, `${instance.address} · ${freshness}`);
}

/** The PAPER mark of a paper venue: its orders never reach the exchange. */
export function paperBadge(): HTMLElement {
  const why = "paper trading: the venue's real market, orders matched by the sim's engine, never sent";
  return h("span", { class: "badge paper", "data-paper": "true", title: why }, "PAPER");
}

function isPaper(answer: Answer): boolean {
  return answer.instance.paper || ("status" in answer && answer.status.paper);
}

function venueCard(answer: Answer): HTMLElement {
  const venue = answer.instance.name;
  const paper = isPaper(answer) ? [paperBadge()] : [];
  if ("error" in answer) {
    return h(
      "article",
      { class: "venue", "data-venue": venue, "data-state": "unreachable", "data-paper": String(paper.length > 0) },
      h(
        "h3",
        {},
        venue,
        ...paper,
        h("span", { class: "badge state-unreachable" }, "unreachable"),
        registration(answer.instance),
      ),
      h("p", { class: "error" }, answer.error),
    );
  }
  const state = label(VenueState, answer.status.state);
  const columns = ["symbol", "channel", "state", "events/s", "last message", "reconnects"];
  return h(
    "article",
    { class: "venue", "data-venue": venue, "data-state": state, "data-paper": String(paper.length > 0) },
    h("h3", {}, venue, ...paper, h("span", { class: `badge state-${state}` }, state), registration(answer.instance)),
    h("p", { class: "summary" }, summary(answer.status)),
    table(columns, h("tbody", {}, ...answer.status.streams.map(streamRow))),
  );
}

export class HealthBoard {
  readonly root: HTMLElement;
  readonly status: HTMLElement;
  private readonly cards = h("div", { class: "venues" });

  constructor(
    private readonly clients: Clients,
    private readonly onVenues: (names: string[], paper: string[]) => void,
  ) {
    ({ root: this.root, status: this.status } = panel("Venues", "health", this.cards));
  }

  run(ctx: LoopContext): Promise<void> {
    return poll(ctx, POLL_MS, () => this.refresh(ctx.signal));
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    const venues = await listVenues(this.clients, signal);
    // Replicas of one venue are one name to the rest of Studio; each has its own card here.
    const paper = venues.filter((v) => v.paper).map((v) => v.name);
    this.onVenues([...new Set(venues.map((v) => v.name))], [...new Set(paper)]);
    const answers = await Promise.all(venues.map((v) => this.ask(v, signal)));
    if (answers.length === 0) fill(this.cards, h("p", { class: "empty" }, "No venue is registered with the gateway."));
    else fill(this.cards, ...answers.map(venueCard));
  }

  private async ask(instance: Instance, signal: AbortSignal): Promise<Answer> {
    try {
      return { instance, status: await this.clients.admin.getStatus({}, unary(signal, instance.name)) };
    } catch (error) {
      return { instance, error: classify(error).message };
    }
  }
}
