// The Ledger page (`#/ledger`): the double-entry books of every fill, fee and funding payment
// (the ledger service). Balances per account, and the transfers as they are posted (the newest
// recorded ones, then WatchTransfers on the tab's Mux stream; a click on one opens its trace,
// ledger/trace), both filtered by venue and strategy (the balances by ledger too); PnL per
// strategy (realised, fees, funding, unrealised, total) with the equity curve of each strategy
// and of the total (ledger/equity-chart); and the books' self-check (Verify). Its loops run only
// while it is shown. Amounts are rounded for display in their asset (lib/money), each exact
// value on hover and in data-exact; the marks' prices at their market's tick.
import type { Clients } from "../api/clients";
import { classify } from "../api/errors";
import { type Instruments, instrumentsOf } from "../api/instruments";
import { type TransferFilter, balances, pnl, recentTransfers, verify, watchTransfers } from "../api/ledger";
import type { LiveStreams } from "../api/live";
import {
  type Balance,
  type GetPnlResponse,
  LedgerKind,
  type StrategyPnl,
  type Transfer,
} from "../gen/trademesh/ledger/v1/ledger_pb";
import { CoalescedRefresh } from "../lib/coalesce";
import { isZero } from "../lib/decimal";
import { clockTime } from "../lib/format";
import { childController, follow, poll } from "../lib/loop";
import { amount, price } from "../lib/money";
import { fill, h, panel, table, throttled } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import { TransferLog, accountText, ledgerName, sign, strategyName } from "./books";
import { EquityChart } from "./equity-chart";

const BOOKS_POLL_MS = 3000;
const HISTORY_POLL_MS = 10_000;
// Live transfers hurry the balances and PnL, at most this often (a busy book posts many a second).
const REFRESH_GAP_MS = 1000;
const BALANCE_COLUMNS = [
  "ledger",
  "account",
  "venue",
  "symbol",
  "strategy",
  "asset",
  "balance",
  "debits",
  "credits",
  "pending",
];
const PNL_COLUMNS = ["strategy", "fills", "realised", "fees", "funding", "unrealised", "total"];
const TRANSFER_COLUMNS = ["time", "ledger", "amount", "debit", "credit", "strategy", "cause"];
const LEDGERS = [
  LedgerKind.CASH,
  LedgerKind.POSITION,
  LedgerKind.FEES,
  LedgerKind.REALISED_PNL,
  LedgerKind.MARGIN,
  LedgerKind.FUNDING_PNL,
];

function money(value: string, asset: string, col: string): HTMLElement {
  return h("td", { class: `num ${sign(value)}`, "data-col": col }, value === "" ? "–" : amount(value, asset, true));
}

/** True for an amount that is not there or zero. */
function none(amount: string): boolean {
  return amount === "" || isZero(amount);
}

/** A select of "every" and `values`, keeping the chosen value; its value "" is no filter. */
function options(select: HTMLSelectElement, every: string, values: Iterable<[string, string]>): void {
  const chosen = select.value;
  fill(
    select,
    h("option", { value: "" }, every),
    ...[...values].map(([value, text]) => h("option", { value, selected: value === chosen }, text)),
  );
  select.value = chosen;
}

/** What caused a transfer, as the trace's first link: its fill, else its event. */
function cause(transfer: Transfer): string {
  const links = transfer.links;
  if (links === undefined) return "";
  return links.fillId !== "" ? `fill ${links.fillId}` : links.eventId;
}

export class LedgerPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly balancesStatus: HTMLElement;
  private readonly transfersStatus: HTMLElement;
  private readonly venue = h("select", { id: "ledger-venue", "aria-label": "venue" });
  private readonly strategy = h("select", { id: "ledger-strategy", "aria-label": "strategy" });
  private readonly kind = h("select", { id: "ledger-kind", "aria-label": "ledger" });
  private readonly nonzero = h("input", { id: "ledger-nonzero", type: "checkbox", checked: true });
  private readonly balanceBody = h("tbody", { id: "ledger-balances" });
  private readonly pnlBody = h("tbody", { id: "ledger-pnl" });
  private readonly marks = h("p", { id: "ledger-marks", class: "who" });
  private readonly transferBody = h("tbody", { id: "ledger-transfers" });
  private readonly verdict = h("span", { id: "ledger-verify", class: "badge" }, "not checked");
  private readonly checkButton = h("button", { id: "ledger-verify-run", type: "button" }, "Verify books");
  private readonly chart = new EquityChart();
  private readonly instruments: Instruments;
  private log = new TransferLog();
  private readonly redrawTransfers = throttled(() => this.drawTransfers());
  private readonly venues = new Set<string>();
  private readonly strategies = new Set<string>();
  // The transfer loops', started again when the venue or strategy filter changes.
  private transfersController: AbortController | null = null;
  private transfersShown = "";
  // Balances and PnL refreshed outside the loops' rhythm (a filter changed, transfers came in a burst).
  private readonly refresher = new CoalescedRefresh(() => {
    const signal = this.loops.signal;
    if (signal === undefined) return undefined;
    return Promise.all([this.refreshBalances(signal), this.refreshPnl(signal)]);
  }, REFRESH_GAP_MS);

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    this.instruments = instrumentsOf(clients, loops.appSignal);
    options(this.kind, "every ledger", LEDGERS.map((k): [string, string] => [String(k), ledgerName(k)]));
    this.drawFilters();
    for (const select of [this.venue, this.strategy, this.kind, this.nonzero]) {
      select.addEventListener("change", () => {
        this.followTransfers();
        void this.refreshNow();
      });
    }
    this.checkButton.addEventListener("click", () => void this.check());
    const filters = h(
      "div",
      { class: "controls" },
      h("label", {}, "Venue ", this.venue),
      h("label", {}, "Strategy ", this.strategy),
    );
    const head = panel(
      "Ledger",
      "ledger",
      h("div", { class: "ledger-head" }, filters, h("div", { class: "ledger-verify" }, this.checkButton, this.verdict)),
    );
    this.status = head.status;
    const pnlPanel = panel(
      "PnL by strategy",
      "ledger-pnl-panel",
      h("div", { class: "scroll" }, table(PNL_COLUMNS, this.pnlBody)),
      this.marks,
      h("h3", {}, "Equity curves"),
      this.chart.root,
    );
    const balanceFilters = h(
      "div",
      { class: "controls" },
      h("label", {}, "Ledger ", this.kind),
      h("label", {}, this.nonzero, " hide empty accounts"),
    );
    const balancesPanel = panel(
      "Balances",
      "ledger-balances-panel",
      balanceFilters,
      h("div", { class: "scroll" }, table(BALANCE_COLUMNS, this.balanceBody)),
    );
    this.balancesStatus = balancesPanel.status;
    const transfersPanel = panel(
      "Transfers (live)",
      "ledger-transfers-panel",
      h("p", { class: "who" }, "Click a transfer for its chain: signal → decision → intent → risk check → order → fill."),
      h("div", { class: "scroll" }, table(TRANSFER_COLUMNS, this.transferBody)),
    );
    this.transfersStatus = transfersPanel.status;
    const grid = h("div", { class: "ledger-grid" }, pnlPanel.root, balancesPanel.root);
    this.root = h("main", { id: "ledger-page", class: "page", hidden: true }, head.root, grid, transfersPanel.root);
    this.drawTransfers();
  }

  /** Shows the page and runs its loops. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    void poll(this.loops.context(signal, this.status), BOOKS_POLL_MS, () => this.refreshPnl(signal));
    void poll(this.loops.context(signal, this.balancesStatus), BOOKS_POLL_MS, () => this.refreshBalances(signal));
    this.followTransfers();
    void this.check();
  }

  /** Stops the page's loops (another page is shown). */
  hide(): void {
    this.loops.stop();
    this.transfersController = null;
    this.transfersShown = "";
  }

  /** The transfers of the venue and strategy chosen: their loops (again, when the choice changed). */
  private followTransfers(): void {
    const parent = this.loops.signal;
    const filter: TransferFilter = { venue: this.venue.value, strategyId: this.strategy.value };
    const key = `${filter.venue}|${filter.strategyId}`;
    if (parent === undefined || (this.transfersController !== null && key === this.transfersShown)) return;
    this.transfersController?.abort();
    this.transfersController = childController(parent);
    this.transfersShown = key;
    const signal = this.transfersController.signal;
    this.log = new TransferLog();
    this.drawTransfers();
    const transfers = this.loops.context(signal, this.transfersStatus);
    void poll({ ...transfers, onStatus: () => undefined }, HISTORY_POLL_MS, async () => {
      const recent = await recentTransfers(this.clients, filter, signal);
      if (!signal.aborted && this.log.add(recent)) this.redrawTransfers();
    });
    void follow(
      transfers,
      (signal, opened) => watchTransfers(this.live, filter, signal, opened),
      (batch) => {
        if (signal.aborted || !this.log.add(batch.transfers)) return;
        this.redrawTransfers();
        // New transfers move balances and PnL: show them now.
        void this.refreshNow();
      },
    );
  }

  private async refreshBalances(signal: AbortSignal): Promise<void> {
    const filter = {
      venue: this.venue.value,
      strategyId: this.strategy.value,
      ledger: Number(this.kind.value || LedgerKind.UNSPECIFIED) as LedgerKind,
      nonzero: this.nonzero.checked,
    };
    const found = await balances(this.clients, filter, signal);
    if (signal.aborted) return;
    this.learn(found.map((b) => b.account?.venue ?? ""), found.map((b) => b.account?.strategyId ?? ""));
    this.drawBalances(found);
  }

  private async refreshPnl(signal: AbortSignal): Promise<void> {
    const reply = await pnl(this.clients, signal);
    if (signal.aborted) return;
    this.learn([], reply.strategies.map((s) => s.strategyId));
    this.drawPnl(reply);
  }

  /** One refresh of balances and PnL outside the loops' rhythm (a filter changed, transfers came). */
  private refreshNow(): Promise<void> {
    return this.refresher.ask();
  }

  private async check(): Promise<void> {
    const signal = this.loops.signal;
    if (signal === undefined) return;
    this.checkButton.disabled = true;
    try {
      const reply = await verify(this.clients, signal);
      const wrong = reply.mismatches.length + reply.problems.length;
      this.verdict.dataset.ok = String(reply.ok);
      this.verdict.className = `badge ${reply.ok ? "pos" : "neg"}`;
      this.verdict.textContent = reply.ok
        ? `books balance: ${reply.accounts} accounts, ${reply.transfers} transfers`
        : `${wrong} problem${wrong === 1 ? "" : "s"}: ${[...reply.mismatches.map((m) => `${m.accountId} ${m.field} ${m.stored} ≠ ${m.recomputed}`), ...reply.problems].join("; ")}`;
    } catch (error) {
      if (signal.aborted) return;
      this.verdict.dataset.ok = "";
      this.verdict.className = "badge neg";
      this.verdict.textContent = `not checked: ${classify(error).message}`;
    } finally {
      this.checkButton.disabled = false;
    }
  }

  /** Venues and strategies seen, offered as filters. */
  private learn(venues: readonly string[], strategies: readonly string[]): void {
    const before = this.venues.size + this.strategies.size;
    for (const v of venues) if (v !== "") this.venues.add(v);
    for (const s of strategies) if (s !== "") this.strategies.add(s);
    if (this.venues.size + this.strategies.size !== before) this.drawFilters();
  }

  private drawFilters(): void {
    const sorted = (values: Set<string>): [string, string][] => [...values].sort().map((v) => [v, v]);
    options(this.venue, "every venue", sorted(this.venues));
    options(this.strategy, "every strategy", sorted(this.strategies));
  }

  private drawBalances(found: readonly Balance[]): void {
    this.balanceBody.dataset.count = String(found.length);
    if (found.length === 0) {
      const empty = h("td", { colspan: BALANCE_COLUMNS.length }, "no accounts (yet) for these filters");
      fill(this.balanceBody, h("tr", { class: "empty" }, empty));
      return;
    }
    fill(
      this.balanceBody,
      ...found.map((b) => {
        const a = b.account;
        const asset = a?.asset ?? "";
        const pending = none(b.debitsPending) && none(b.creditsPending)
          ? ""
          : h("span", {}, amount(b.debitsPending, asset), " / ", amount(b.creditsPending, asset));
        return h(
          "tr",
          {
            "data-account-id": a?.id ?? "",
            "data-ledger": a === undefined ? "" : ledgerName(a.ledger),
            "data-code": a?.codeName ?? "",
            "data-venue": a?.venue ?? "",
            "data-symbol": a?.symbol ?? "",
            "data-asset": a?.asset ?? "",
            "data-strategy": a?.strategyId ?? "",
            "data-balance": b.balance,
          },
          h("td", {}, a === undefined ? "" : ledgerName(a.ledger)),
          h("td", { class: "code", title: a?.id ?? "" }, a?.codeName ?? ""),
          h("td", {}, a?.venue ?? ""),
          h("td", {}, a?.symbol ?? ""),
          h("td", {}, a?.strategyId ?? ""),
          h("td", {}, a?.asset ?? ""),
          h("td", { class: `num ${sign(b.balance)}`, "data-col": "balance" }, amount(b.balance, asset)),
          h("td", { class: "num", "data-col": "debits" }, amount(b.debitsPosted, asset)),
          h("td", { class: "num", "data-col": "credits" }, amount(b.creditsPosted, asset)),
          h("td", { class: "num", "data-col": "pending" }, pending),
        );
      }),
    );
  }

  private pnlRow(item: StrategyPnl, total: boolean): HTMLElement {
    return h(
      "tr",
      { "data-strategy": total ? "" : item.strategyId, "data-total": item.total, class: total ? "total" : "" },
      h("td", {}, total ? "total" : strategyName(item.strategyId)),
      h("td", { class: "num" }, String(item.fills)),
      money(item.realised, item.asset, "realised"),
      money(item.fees, item.asset, "fees"),
      money(item.funding, item.asset, "funding"),
      money(item.unrealised, item.asset, "unrealised"),
      money(item.total, item.asset, "total"),
    );
  }

  private drawPnl(reply: GetPnlResponse): void {
    const rows = reply.strategies.map((s) => this.pnlRow(s, false));
    if (reply.total !== undefined) rows.push(this.pnlRow(reply.total, true));
    this.pnlBody.dataset.strategies = String(reply.strategies.length);
    if (rows.length === 0) {
      fill(this.pnlBody, h("tr", { class: "empty" }, h("td", { colspan: PNL_COLUMNS.length }, "no fills yet")));
    } else fill(this.pnlBody, ...rows);
    const marks = reply.marks.flatMap((m, i) => [
      i === 0 ? "Unrealised at the marks: " : ", ",
      `${m.venue} ${m.symbol} `,
      price(m.price, this.instruments.tick(m.venue, m.symbol)),
    ]);
    fill(this.marks, ...marks);
    this.chart.show(reply);
  }

  private transferRow(t: Transfer): HTMLElement {
    const strategy = t.links?.strategyId ?? "";
    return h(
      "tr",
      {
        class: "traceable",
        "data-transfer-id": t.id,
        "data-trace-id": t.id,
        "data-ledger": ledgerName(t.ledger),
        "data-strategy": strategy,
        "data-fill-id": t.links?.fillId ?? "",
        title: "Open the trace of this transfer",
      },
      h("td", {}, clockTime(t.tsNs)),
      h("td", {}, ledgerName(t.ledger)),
      h("td", { class: "num", "data-col": "amount" }, amount(t.amount, t.asset, true)),
      h("td", { class: "code" }, accountText(t.debitAccount, t.debitAccountId)),
      h("td", { class: "code" }, accountText(t.creditAccount, t.creditAccountId)),
      h("td", {}, strategy),
      h("td", { class: "code" }, cause(t)),
    );
  }

  private drawTransfers(): void {
    const transfers = this.log.list();
    this.transferBody.dataset.count = String(transfers.length);
    if (transfers.length === 0) {
      const empty = h("td", { colspan: TRANSFER_COLUMNS.length }, "no transfers yet");
      fill(this.transferBody, h("tr", { class: "empty" }, empty));
    } else fill(this.transferBody, ...transfers.map((t) => this.transferRow(t)));
  }
}
