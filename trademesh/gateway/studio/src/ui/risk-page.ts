// The Risk page (`#/risk`): the inspector's dashboard, live. KPIs and the operator's buttons
// (ui/risk-kpis, ui/risk-controls), positions with their protective orders and the selected
// one's stop-loss and take-profit on a chart (ui/risk-positions, ui/position-chart), the policy
// status (ui/risk-policies), capital efficiency per strategy over time (ui/risk-capital), and
// the risk-event timeline (ui/risk-timeline: the recorded events,
// then WatchRiskEvents on the tab's Mux stream). Its loops run only while the page is shown.
import type { Clients } from "../api/clients";
import {
  policies,
  positions,
  recentRiskEvents,
  riskState,
  setMode,
  watchRiskEvents,
} from "../api/inspector";
import { instrumentsOf } from "../api/instruments";
import type { LiveStreams } from "../api/live";
import type { Mode } from "../gen/trademesh/risk/v1/inspector_pb";
import { CoalescedRefresh } from "../lib/coalesce";
import { follow, poll } from "../lib/loop";
import { h, panel } from "./dom";
import type { PageLoops } from "./page-loops";
import { PositionChart } from "./position-chart";
import { RiskCapital } from "./risk-capital";
import { RiskControls } from "./risk-controls";
import { RiskKpis } from "./risk-kpis";
import { PolicyStatusTable } from "./risk-policies";
import { RiskPositions } from "./risk-positions";
import { RiskTimeline } from "./risk-timeline";

const STATE_POLL_MS = 1000;
const DETAIL_POLL_MS = 2000;
const HISTORY_POLL_MS = 10_000;

export class RiskPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly timelineStatus: HTMLElement;
  private readonly positionsStatus: HTMLElement;
  private readonly kpis = new RiskKpis();
  private readonly chart: PositionChart;
  private readonly positions: RiskPositions;
  private readonly policies = new PolicyStatusTable();
  private readonly capital = new RiskCapital();
  private readonly timeline = new RiskTimeline();
  private readonly controls: RiskControls;
  // Everything refreshed outside the loops' rhythm (after a command, live events in a burst).
  private readonly refresher = new CoalescedRefresh(() => {
    const signal = this.loops.signal;
    if (signal === undefined) return undefined;
    return Promise.all([this.refreshState(signal), this.refreshDetails(signal)]);
  });

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    this.chart = new PositionChart(clients);
    const instruments = instrumentsOf(clients, loops.appSignal);
    this.positions = new RiskPositions(
      (position) => this.chart.show(position),
      (venue, symbol) => instruments.tick(venue, symbol),
    );
    this.controls = new RiskControls(
      (mode: Mode, reason: string) => setMode(clients, mode, reason, loops.appSignal),
      () => void this.refreshNow(),
    );
    const head = panel("Risk", "risk", this.controls.root, this.kpis.root);
    this.status = head.status;
    const positionsPanel = panel("Positions", "risk-positions-panel", this.positions.root, this.chart.root);
    this.positionsStatus = positionsPanel.status;
    const policiesPanel = panel("Policies", "risk-policies", this.policies.root);
    const capitalPanel = panel("Capital efficiency", "risk-capital-panel", this.capital.root);
    const timelinePanel = panel("Risk events", "risk-timeline", this.timeline.root);
    this.timelineStatus = timelinePanel.status;
    const grid = h("div", { class: "risk-grid" }, positionsPanel.root, policiesPanel.root);
    const page = [head.root, grid, capitalPanel.root, timelinePanel.root];
    this.root = h("main", { id: "risk-page", class: "page", hidden: true }, ...page);
  }

  /** Shows the page and runs its loops. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    const ctx = this.loops.context(signal, this.status);
    void poll(ctx, STATE_POLL_MS, () => this.refreshState(signal));
    const details = this.loops.context(signal, this.positionsStatus);
    void poll(details, DETAIL_POLL_MS, () => this.refreshDetails(signal));
    const timeline = this.loops.context(signal, this.timelineStatus);
    void poll({ ...timeline, onStatus: () => undefined }, HISTORY_POLL_MS, async () => {
      const events = await recentRiskEvents(this.clients, signal);
      if (!signal.aborted) this.timeline.add(events);
    });
    void follow(
      timeline,
      (signal, opened) => watchRiskEvents(this.live, signal, opened),
      (batch) => {
        if (signal.aborted) return;
        this.timeline.add(batch.events);
        this.timeline.transitions(batch.transitions);
        // A live event may change the state, a position or a policy's use: show it now.
        void this.refreshNow();
      },
    );
  }

  /** Stops the page's loops (another page is shown). */
  hide(): void {
    this.loops.stop();
  }

  private async refreshState(signal: AbortSignal): Promise<void> {
    const state = await riskState(this.clients, signal);
    if (signal.aborted) return;
    this.kpis.show(state);
    this.capital.show(state);
    this.timeline.transitions(state.transitions);
  }

  private async refreshDetails(signal: AbortSignal): Promise<void> {
    const [policyReply, positionList] = await Promise.all([
      policies(this.clients, signal),
      positions(this.clients, signal),
    ]);
    if (signal.aborted) return;
    this.policies.show(policyReply);
    this.positions.show(positionList);
    await this.chart.refresh(signal);
  }

  /** One refresh of everything outside the loops' rhythm (after a command or a live event);
   * asked for again while one runs, it runs once more after it. */
  private refreshNow(): Promise<void> {
    return this.refresher.ask();
  }
}
