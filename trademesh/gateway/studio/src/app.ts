// One logged-in Studio session: the transport with its token, the panels, their loops. It ends
// (every loop and stream stopped) on logout, on UNAUTHENTICATED from any call, or when the
// token's expiry passes, and hands back to the login screen with the reason.
import { AccountsPage } from "./accounts/page";
import { createClients } from "./api/clients";
import { DetectorChoice } from "./api/detectors";
import { LiveStreams } from "./api/live";
import { clearSession, type Session } from "./api/session";
import { createTransport } from "./api/transport";
import { BacktestPage } from "./backtest/page";
import { MarketBoardPage } from "./board/page";
import { LedgerPage } from "./ledger/page";
import { installTrace } from "./ledger/trace";
import { OverviewPage } from "./overview/page";
import { ScreenerPage } from "./screener/page";
import { ServicesPage } from "./services/page";
import { SupervisorPage } from "./supervisor/page";
import { Connection } from "./lib/connection";
import { LogsPage } from "./logs/page";
import { connectionBanner } from "./ui/banner";
import { AdvisorPage } from "./ui/decision-log";
import { DetectorPicker } from "./ui/detector-picker";
import { fill, h, showStatus } from "./ui/dom";
import { HealthBoard } from "./ui/health";
import { Ladder } from "./ui/ladder";
import { MarketView } from "./ui/market";
import { PageLoops } from "./ui/page-loops";
import { parseRoute, showPage, strategiesHash } from "./ui/pages";
import { RiskPage } from "./ui/risk-page";
import { StrategiesPage } from "./ui/strategies";
import { Tape } from "./ui/tape";
import { TradingDesk } from "./ui/trading";

export const SESSION_EXPIRED = "session expired, log in again";

export function startApp(root: HTMLElement, session: Session, onEnd: (notice: string) => void): void {
  const controller = new AbortController();
  const signal = controller.signal;
  let expiry: ReturnType<typeof setTimeout> | undefined;
  const end = (notice: string): void => {
    if (signal.aborted) return;
    controller.abort();
    clearTimeout(expiry);
    clearSession();
    onEnd(notice);
  };
  const watchExpiry = (): void => {
    const left = session.expiresAtMs - Date.now();
    if (left <= 0) end(SESSION_EXPIRED);
    // setTimeout holds at most 2^31-1 ms (24.8 days): longer sessions re-arm.
    else expiry = setTimeout(watchExpiry, Math.min(left, 2 ** 31 - 1));
  };
  watchExpiry();
  if (signal.aborted) return;

  const clients = createClients(createTransport(session.token, () => end(SESSION_EXPIRED)));
  const connection = new Connection();
  // Every live panel's stream rides this one stream of the tab (the gateway's multiplexer).
  const live = new LiveStreams(clients.mux, signal);
  // The detector instance shown: the picker's choice, in the Strategies page's URL.
  const detectors = new DetectorChoice();
  const picker = new DetectorPicker(
    clients,
    detectors,
    (name) => (window.location.hash = strategiesHash(null, name)),
    signal,
  );
  const desk = new TradingDesk(clients, live, connection, signal);
  const ladder = new Ladder((price) => desk.setPrice(price));
  const tape = new Tape();
  const market = new MarketView(
    clients,
    live,
    connection,
    signal,
    ladder,
    tape,
    (venue, symbol) => desk.select(venue, symbol),
    detectors,
  );
  const health = new HealthBoard(clients, (names, paper) => {
    desk.setPaperVenues(paper);
    market.setVenues(names);
  });
  // Each page's loops: run while it is shown (ui/page-loops).
  const pageLoops = (): PageLoops => new PageLoops(connection, signal);
  const strategies = new StrategiesPage(clients, live, pageLoops(), detectors, picker.root);
  const advisor = new AdvisorPage(clients, live, pageLoops());
  const risk = new RiskPage(clients, live, pageLoops());
  const ledger = new LedgerPage(clients, live, pageLoops());
  const accounts = new AccountsPage(clients, live, pageLoops());
  const backtest = new BacktestPage(clients, live, connection, signal);
  const services = new ServicesPage(clients, pageLoops());
  const logs = new LogsPage(live, pageLoops());
  const overview = new OverviewPage(clients, live, pageLoops());
  const supervisor = new SupervisorPage(clients, live, pageLoops());
  const screener = new ScreenerPage(clients, live, pageLoops());
  const board = new MarketBoardPage(clients, live, pageLoops());
  // The trace view: any element with data-trace-id, on any page, opens the chain of its id.
  installTrace(clients, signal);
  const panels = [health.root, market.root, ladder.root, tape.root, desk.root];
  const trading = h("main", { id: "trading-page", class: "grid" }, ...panels);
  const nav = h(
    "nav",
    { class: "pages" },
    h("a", { id: "nav-overview", href: "#/" }, "Overview"),
    h("a", { id: "nav-trading", href: "#/trading" }, "Trading"),
    h("a", { id: "nav-market", href: "#/market" }, "Market"),
    h("a", { id: "nav-strategies", href: "#/strategies" }, "Strategies"),
    h("a", { id: "nav-advisor", href: "#/advisor" }, "Advisor"),
    h("a", { id: "nav-risk", href: "#/risk" }, "Risk"),
    h("a", { id: "nav-ledger", href: "#/ledger" }, "Ledger"),
    h("a", { id: "nav-accounts", href: "#/accounts" }, "Accounts"),
    h("a", { id: "nav-backtest", href: "#/backtest" }, "Backtest"),
    h("a", { id: "nav-supervisor", href: "#/supervisor" }, "Supervisor"),
    h("a", { id: "nav-screener", href: "#/screener" }, "Screener"),
    h("a", { id: "nav-services", href: "#/services" }, "Services"),
    h("a", { id: "nav-logs", href: "#/logs" }, "Logs"),
  );

  const logout = h("button", { id: "logout", type: "button" }, "Log out");
  logout.addEventListener("click", () => end(""));
  fill(
    root,
    h(
      "header",
      { class: "top" },
      h("h1", {}, "trademesh Studio"),
      nav,
      h("span", { id: "key-name", class: "who" }, `key: ${session.keyName}`),
      logout,
    ),
    connectionBanner(connection, signal),
    overview.root,
    trading,
    board.root,
    strategies.root,
    advisor.root,
    risk.root,
    ledger.root,
    accounts.root,
    backtest.root,
    supervisor.root,
    screener.root,
    services.root,
    logs.root,
  );
  const route = (): void => {
    const shown = parseRoute(window.location.hash);
    showPage(shown, {
      overview,
      trading,
      market: board,
      strategies,
      advisor,
      risk,
      ledger,
      accounts,
      backtest,
      supervisor,
      screener,
      services,
      logs,
      nav,
    });
    // The ladder and the tape draw nothing while hidden: shown, they catch up.
    if (shown.page === "trading") {
      ladder.redraw();
      tape.redraw();
    }
  };
  window.addEventListener("hashchange", route, { signal });
  // A choice made without the URL (the first instance listed, by default) goes into it.
  detectors.onChange((name) => {
    const shown = parseRoute(window.location.hash);
    if (shown.page !== "strategies" || name === null || shown.detector === name) return;
    const patchId = shown.detector === null ? shown.patchId : null;
    window.history.replaceState(null, "", strategiesHash(patchId, name));
  }, signal);
  route();
  void picker.run({ signal, connection, onStatus: (status) => (picker.root.dataset.status = status.text) });
  void health.run({ signal, connection, onStatus: (status) => showStatus(health.status, status) });
}
