// The Accounts page (`#/accounts`): every venue account the gateway knows (docs/accounts.md: a
// venue is one account at its exchange, "binance.desk-a" the account desk-a, "binance" the
// exchange's one), each kept apart: its exchange and account, live, paper or sim, the instances
// it runs as; its balances and positions from the venue itself (TradeFlow.StreamAccount on the
// tab's Mux stream, targeted at that venue: a snapshot, then every change); and its PnL and fees
// from the ledger's books of that venue alone (Ledger.GetPnl with the venue). Its loops run
// only while it is shown. Amounts are rounded in their asset (lib/money), the exact value on
// hover and in data-exact. A derivatives position shows its mark, unrealised PnL, leverage,
// margin ratio, liquidation price and the distance to it, coloured (ui/margin); a spot one
// leaves those cells empty.
import { type Clients, unary } from "../api/clients";
import { classify } from "../api/errors";
import type { LiveStreams } from "../api/live";
import { instrumentsOf } from "../api/instruments";
import { listVenues } from "../api/venues";
import type { GetStatusResponse } from "../gen/trademesh/admin/v1/admin_pb";
import type { StrategyPnl } from "../gen/trademesh/ledger/v1/ledger_pb";
import { type Position, TradeFlow } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import type { Connection } from "../lib/connection";
import { childController, follow, type LoopContext, poll } from "../lib/loop";
import { fromPosition } from "../lib/margin";
import { price, amount as shownAmount, size } from "../lib/money";
import { sign } from "../ledger/books";
import { fill, h, panel, showStatus, table } from "../ui/dom";
import { MARGIN_COLUMNS, marginCells } from "../ui/margin";
import type { PageLoops } from "../ui/page-loops";
import { AccountState, type VenueAccount, venueAccounts } from "./model";

const LIST_POLL_MS = 2000;
const PNL_POLL_MS = 3000;
const COLUMNS = ["venue", "exchange", "account", "mode", "instances", "fills", "fees", "realised", "total PnL"];
const BALANCE_COLUMNS = ["asset", "free", "locked", "total"];
const PNL_COLUMNS = ["fills", "realised", "fees", "funding", "unrealised", "total"];
const POSITION_COLUMNS = ["symbol", "size", "entry price", "mark", "uPnL", ...MARGIN_COLUMNS];

/** A market's tick size at a venue (undefined: not known yet). */
type TickOf = (venue: string, symbol: string) => string | undefined;

/** One account's PnL as the ledger answered it, or why it did not. */
type Books = { pnl: StrategyPnl | undefined } | { error: string };

function modeBadge(account: VenueAccount): HTMLElement {
  const why = {
    live: "trades at the exchange with this account's own credentials",
    paper: "paper trading: the exchange's market, orders matched by the sim's engine, never sent",
    sim: "the simulated exchange: its own market and its config's balances",
  }[account.mode];
  const attributes = { class: `badge mode-${account.mode}`, "data-mode": account.mode, title: why };
  return h("span", attributes, account.mode.toUpperCase());
}

function amount(value: string, asset: string, col: string): HTMLElement {
  return h("td", { class: `num ${sign(value)}`, "data-col": col }, value === "" ? "–" : shownAmount(value, asset, true));
}

/** One account's card: its balances and positions (its stream) and its books (the ledger). */
class AccountCard {
  readonly root: HTMLElement;
  readonly state = new AccountState();
  readonly controller: AbortController;
  private readonly head = h("h3", {});
  private readonly streamStatus = h("span", { class: "status account-stream" });
  private readonly balanceBody = h("tbody", { class: "account-balances" });
  private readonly positions = h("tbody", { class: "account-positions" });
  private readonly pnlBody = h("tbody", { class: "account-pnl" });

  constructor(
    private account: VenueAccount,
    parent: AbortSignal,
    private readonly tick: TickOf,
  ) {
    this.controller = childController(parent);
    this.root = h(
      "article",
      { class: "venue account", "data-venue": account.venue },
      this.head,
      h("div", { class: "who" }, "Balances (the venue's account stream) ", this.streamStatus),
      table(BALANCE_COLUMNS, this.balanceBody),
      h("div", { class: "who" }, "Positions (the same stream)"),
      table(POSITION_COLUMNS, this.positions),
      h("div", { class: "who" }, "PnL and fees (the ledger's books of this account)"),
      table(PNL_COLUMNS, this.pnlBody),
    );
    this.setAccount(account);
    this.drawBalances();
    this.drawBooks(undefined);
  }

  setAccount(account: VenueAccount): void {
    this.account = account;
    const who = account.account === "" ? "the exchange's one account" : `account ${account.account}`;
    this.root.dataset.exchange = account.exchange;
    this.root.dataset.account = account.account;
    this.root.dataset.mode = account.mode;
    fill(
      this.head,
      account.venue,
      modeBadge(account),
      h("span", { class: "where" }, `${account.exchange} · ${who} · ${account.addresses.join(", ")}`),
    );
  }

  /** Follows the venue's account stream through the gateway until the card goes. */
  follow(live: LiveStreams, connection: Connection): void {
    const ctx: LoopContext = {
      signal: this.controller.signal,
      connection,
      onStatus: (s) => showStatus(this.streamStatus, s),
    };
    void follow(
      ctx,
      (signal, opened) =>
        live.subscribe(TradeFlow.method.streamAccount, {}, { signal, onAdded: opened, target: this.account.venue }),
      (message) => {
        this.state.take(message);
        this.drawBalances();
      },
    );
  }

  drawBalances(): void {
    const balances = this.state.balances();
    this.balanceBody.dataset.updates = String(this.state.updates);
    if (balances.length === 0) {
      const text = this.state.updates === 0 ? "waiting for the account stream" : "no balances";
      fill(this.balanceBody, h("tr", { class: "empty" }, h("td", { colspan: BALANCE_COLUMNS.length }, text)));
    } else {
      fill(
        this.balanceBody,
        ...balances.map((b) =>
          h(
            "tr",
            { "data-asset": b.asset, "data-free": b.free, "data-locked": b.locked, "data-total": b.total },
            h("td", {}, b.asset),
            h("td", { class: "num", "data-col": "free" }, shownAmount(b.free, b.asset)),
            h("td", { class: "num", "data-col": "locked" }, shownAmount(b.locked, b.asset)),
            h("td", { class: "num", "data-col": "total" }, shownAmount(b.total, b.asset)),
          ),
        ),
      );
    }
    this.drawPositions();
  }

  /** Every open position with its margin figures (again when its market's tick arrives). */
  drawPositions(): void {
    const positions = this.state.positions();
    this.positions.dataset.count = String(positions.length);
    if (positions.length === 0) {
      const text = this.state.updates === 0 ? "waiting for the account stream" : "no open position";
      fill(this.positions, h("tr", { class: "empty" }, h("td", { colspan: POSITION_COLUMNS.length }, text)));
    } else fill(this.positions, ...positions.map((p) => this.positionRow(p)));
  }

  private positionRow(p: Position): HTMLElement {
    const tick = this.tick(this.account.venue, p.symbol);
    return h(
      "tr",
      { "data-symbol": p.symbol, "data-size": p.size, "data-mark": p.markPrice },
      h("td", {}, p.symbol),
      h("td", { class: `num ${p.size.startsWith("-") ? "sell" : "buy"}`, "data-col": "size" }, size(p.size)),
      h("td", { class: "num", "data-col": "entry" }, p.entryPrice === "" ? null : price(p.entryPrice, tick)),
      h("td", { class: "num", "data-col": "mark" }, p.markPrice === "" ? null : price(p.markPrice, tick)),
      h(
        "td",
        { class: `num ${sign(p.unrealizedPnl)}`, "data-col": "unrealized" },
        p.unrealizedPnl === "" ? null : shownAmount(p.unrealizedPnl, p.settleAsset, p.settleAsset !== ""),
      ),
      ...marginCells(fromPosition(p), tick),
    );
  }

  drawBooks(books: Books | undefined): void {
    if (books === undefined || "error" in books) {
      const text = books === undefined ? "not read yet" : `ledger: ${books.error}`;
      this.pnlBody.dataset.fills = "";
      fill(this.pnlBody, h("tr", { class: "empty" }, h("td", { colspan: PNL_COLUMNS.length }, text)));
      return;
    }
    const pnl = books.pnl;
    this.pnlBody.dataset.fills = String(pnl?.fills ?? 0);
    if (pnl === undefined) {
      fill(this.pnlBody, h("tr", { class: "empty" }, h("td", { colspan: PNL_COLUMNS.length }, "no fills yet")));
      return;
    }
    fill(
      this.pnlBody,
      h(
        "tr",
        {
          "data-fills": String(pnl.fills),
          "data-realised": pnl.realised,
          "data-fees": pnl.fees,
          "data-total": pnl.total,
        },
        h("td", { class: "num", "data-col": "fills" }, String(pnl.fills)),
        amount(pnl.realised, pnl.asset, "realised"),
        amount(pnl.fees, pnl.asset, "fees"),
        amount(pnl.funding, pnl.asset, "funding"),
        amount(pnl.unrealised, pnl.asset, "unrealised"),
        amount(pnl.total, pnl.asset, "total"),
      ),
    );
  }
}

export class AccountsPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly pnlStatus: HTMLElement;
  private readonly rows = h("tbody", { id: "accounts-rows" });
  private readonly cardList = h("div", { id: "accounts-cards", class: "venues" });
  private readonly cards = new Map<string, AccountCard>();
  private readonly books = new Map<string, Books>();
  private accounts: VenueAccount[] = [];
  private readonly tick: TickOf;

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    const overview = panel(
      "Accounts",
      "accounts",
      h(
        "p",
        { class: "who" },
        "Each venue is one account at its exchange (binance.desk-a: the account desk-a at binance), " +
          "kept apart from the others.",
      ),
      h("div", { class: "scroll" }, table(COLUMNS, this.rows)),
    );
    this.status = overview.status;
    const details = panel("Balances and books per account", "accounts-detail", this.cardList);
    this.pnlStatus = details.status;
    this.root = h("main", { id: "accounts-page", class: "page", hidden: true }, overview.root, details.root);
    const instruments = instrumentsOf(clients, loops.appSignal);
    this.tick = (venue, symbol) => instruments.tick(venue, symbol);
    instruments.onLoad(() => {
      for (const card of this.cards.values()) card.drawPositions();
    }, loops.appSignal);
    this.drawRows();
  }

  /** Shows the page and runs its loops. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    void poll(this.loops.context(signal, this.status), LIST_POLL_MS, () => this.refreshAccounts(signal));
    void poll(this.loops.context(signal, this.pnlStatus), PNL_POLL_MS, () => this.refreshBooks(signal));
  }

  /** Stops the page's loops and account streams (another page is shown). */
  hide(): void {
    this.loops.stop();
    for (const card of this.cards.values()) card.root.remove();
    this.cards.clear();
  }

  private async refreshAccounts(signal: AbortSignal): Promise<void> {
    const instances = await listVenues(this.clients, signal);
    const names = [...new Set(instances.map((i) => i.name))];
    const statuses = new Map<string, GetStatusResponse>();
    await Promise.all(
      names.map(async (venue) => {
        try {
          statuses.set(venue, await this.clients.admin.getStatus({}, unary(signal, venue)));
        } catch {
          // Unreachable: named by its registry entry alone (the trading page's board says why).
        }
      }),
    );
    if (signal.aborted) return;
    this.accounts = venueAccounts(instances, statuses);
    const added = this.placeCards(signal);
    this.drawRows();
    // A new account's books now, not at the books loop's next turn (its failures are that loop's).
    if (added) void this.refreshBooks(signal).catch(() => undefined);
  }

  /** A card per account, in the list's order: new ones follow their stream, gone ones stop.
   * True when any was new. */
  private placeCards(signal: AbortSignal): boolean {
    let added = false;
    const wanted = new Set(this.accounts.map((a) => a.venue));
    for (const [venue, card] of this.cards) {
      if (wanted.has(venue)) continue;
      card.controller.abort();
      card.root.remove();
      this.cards.delete(venue);
    }
    for (const account of this.accounts) {
      let card = this.cards.get(account.venue);
      if (card === undefined) {
        card = new AccountCard(account, signal, this.tick);
        added = true;
        card.drawBooks(this.books.get(account.venue));
        this.cards.set(account.venue, card);
        card.follow(this.live, this.loops.connection);
      } else card.setAccount(account);
      this.cardList.append(card.root); // moves it into the list's order
    }
    const none = "No venue is registered with the gateway.";
    if (this.accounts.length === 0) fill(this.cardList, h("p", { class: "empty" }, none));
    else this.cardList.querySelector(":scope > p.empty")?.remove();
    return added;
  }

  /** Each account's PnL and fees from the ledger, asked per venue; a failure for every one
   * (no ledger) is the loop's, one for some is shown on their cards. */
  private async refreshBooks(signal: AbortSignal): Promise<void> {
    const venues = this.accounts.map((a) => a.venue);
    const answers = await Promise.all(
      venues.map(async (venue): Promise<[string, Books, unknown]> => {
        try {
          const reply = await this.clients.ledger.getPnl({ venue }, unary(signal));
          return [venue, { pnl: reply.total }, undefined];
        } catch (error) {
          return [venue, { error: classify(error).message }, error];
        }
      }),
    );
    if (signal.aborted) return;
    for (const [venue, books] of answers) {
      this.books.set(venue, books);
      this.cards.get(venue)?.drawBooks(books);
    }
    this.drawRows();
    const failed = answers.filter(([, , error]) => error !== undefined);
    if (failed.length > 0 && failed.length === answers.length) throw failed[0]?.[2];
  }

  private drawRows(): void {
    this.rows.dataset.count = String(this.accounts.length);
    if (this.accounts.length === 0) {
      fill(this.rows, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "no venue registered (yet)")));
      return;
    }
    fill(this.rows, ...this.accounts.map((a) => this.row(a)));
  }

  private row(account: VenueAccount): HTMLElement {
    const books = this.books.get(account.venue);
    const pnl = books !== undefined && "pnl" in books ? books.pnl : undefined;
    const asset = pnl?.asset ?? "";
    return h(
      "tr",
      {
        "data-venue": account.venue,
        "data-exchange": account.exchange,
        "data-account": account.account,
        "data-mode": account.mode,
        "data-instances": account.instances.join(" "),
        "data-fills": pnl === undefined ? "" : String(pnl.fills),
        "data-fees": pnl?.fees ?? "",
      },
      h("td", {}, account.venue),
      h("td", {}, account.exchange),
      h("td", {}, account.account === "" ? "(its one account)" : account.account),
      h("td", {}, modeBadge(account)),
      h(
        "td",
        { class: "mono", title: account.instances.join("\n") },
        account.instances.map((i) => i.slice(0, 8)).join(" "),
      ),
      h("td", { class: "num" }, pnl === undefined ? "–" : String(pnl.fills)),
      amount(pnl?.fees ?? "", asset, "fees"),
      amount(pnl?.realised ?? "", asset, "realised"),
      amount(pnl?.total ?? "", asset, "total"),
    );
  }
}
