// The risk-event timeline: every risk event (ALLOW, BLOCK, THROTTLE, STAND_DOWN, CLOSE_ALL,
// policy changes, notices), newest first, with its policy, reason and values; from the recorded
// events (ListRiskEvents) and the live ones (WatchRiskEvents). State transitions come live too
// and show above the table.
import { type RiskEvent, RiskAction, RiskState, type Transition } from "../gen/trademesh/risk/v1/inspector_pb";
import { clockTime, label } from "../lib/format";
import { RiskEventLog } from "../risk/events";
import { fill, h, table, throttled } from "./dom";

const COLUMNS = ["time", "action", "policy", "reason", "values", "market", "strategy"];

/** "value=0.12, limit=0.1" */
export function valuesText(event: RiskEvent): string {
  return event.values.map((v) => `${v.name}=${v.value}`).join(", ");
}

export function transitionText(transition: Transition): string {
  return `${label(RiskState, transition.before)} → ${label(RiskState, transition.after)}: ${transition.reason}`;
}

export class RiskTimeline {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "risk-events" });
  private readonly transition = h("p", { id: "risk-transition", class: "empty" });
  private readonly log = new RiskEventLog();
  private readonly redraw = throttled(() => this.draw());

  constructor() {
    this.root = h("div", { class: "risk-timeline" }, this.transition, table(COLUMNS, this.body));
    this.draw();
  }

  add(events: readonly RiskEvent[]): void {
    if (this.log.add(events)) this.redraw();
  }

  transitions(transitions: readonly Transition[]): void {
    const last = transitions[transitions.length - 1];
    if (last === undefined) return;
    this.transition.textContent = `${clockTime(last.tsNs)} ${transitionText(last)}`;
    this.transition.dataset.after = label(RiskState, last.after);
  }

  private row(event: RiskEvent): HTMLElement {
    const action = label(RiskAction, event.action);
    return h(
      "tr",
      {
        "data-event-id": event.eventId,
        "data-action": action,
        "data-policy": event.policy,
        class: `action-${action.replaceAll(" ", "-")}`,
      },
      h("td", {}, clockTime(event.tsNs)),
      h("td", { "data-col": "action" }, action),
      h("td", { "data-col": "policy" }, event.policy),
      h("td", { "data-col": "reason" }, event.reason),
      h("td", { "data-col": "values" }, valuesText(event)),
      h("td", { "data-col": "market" }, event.venue === "" ? "" : `${event.venue} ${event.symbol}`),
      h("td", { "data-col": "strategy" }, event.strategyId),
    );
  }

  private draw(): void {
    const events = this.log.list();
    if (events.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "no risk events yet")));
    } else fill(this.body, ...events.map((event) => this.row(event)));
  }
}
