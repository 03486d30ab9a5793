// Studio's pages, by the URL's hash: "#/" the overview (the default: the page shown after log-in;
// overview/page), "#/trading" the trading desk, "#/strategies" and
// "#/strategies/<patch id, URI-encoded>" (that patch's view open), either strategies route with
// "?detector=<name>" naming the detector instance shown, and "#/advisor" and
// "#/advisor/<decision id, URI-encoded>" (the advisor's decision log, that decision open), and
// "#/risk" (the inspector's risk dashboard), "#/ledger" (the ledger's books), and "#/backtest" and
// "#/backtest/<run id, URI-encoded>" (the backtest hub's runs, that run's result open), and
// "#/supervisor" (the Supervisor's mode, open proposals and audit trail: supervisor/page), and
// "#/services" (every registered instance's health and figures, the firing alerts), "#/market"
// (the market board: every venue's tickers side by side, board/page), and
// "#/accounts" (every venue account: its balances from the venue, its PnL from the ledger), and
// "#/screener" and "#/screener/<screen, URI-encoded>" (the Screener's screens, that one shown), and
// "#/logs?<filters>" (LogHub's lines, filtered: logs/filters). A link
// or the browser's back button moves between them; a reload keeps the page.
import type { AccountsPage } from "../accounts/page";
import type { MarketBoardPage } from "../board/page";
import type { BacktestPage } from "../backtest/page";
import type { LedgerPage } from "../ledger/page";
import type { LogsPage } from "../logs/page";
import type { OverviewPage } from "../overview/page";
import type { ScreenerPage } from "../screener/page";
import type { ServicesPage } from "../services/page";
import type { SupervisorPage } from "../supervisor/page";
import type { AdvisorPage } from "./decision-log";
import type { RiskPage } from "./risk-page";
import type { StrategiesPage } from "./strategies";

export type Route =
  | { page: "overview" }
  | { page: "trading" }
  | { page: "market" }
  | { page: "strategies"; patchId: string | null; detector: string | null }
  | { page: "advisor"; decisionId: string | null }
  | { page: "risk" }
  | { page: "ledger" }
  | { page: "accounts" }
  | { page: "services" }
  | { page: "supervisor" }
  | { page: "backtest"; runId: string | null }
  | { page: "screener"; screen: string | null }
  | { page: "logs"; query: string };

/** The path's one segment after its page ("" when none), URI-decoded; null when malformed. */
function segment(encoded: string | undefined): string | null {
  try {
    return decodeURIComponent(encoded ?? "");
  } catch {
    return null;
  }
}

/** "#/strategies/trend%2Fsim%2FBTC%2FUSDT?detector=a" -> the strategies page of detector a
 * with that patch open. */
export function parseRoute(hash: string): Route {
  if (/^#\/trading\/?$/.test(hash)) return { page: "trading" };
  if (/^#\/market\/?$/.test(hash)) return { page: "market" };
  if (/^#\/risk\/?$/.test(hash)) return { page: "risk" };
  if (/^#\/ledger\/?$/.test(hash)) return { page: "ledger" };
  if (/^#\/accounts\/?$/.test(hash)) return { page: "accounts" };
  if (/^#\/services\/?$/.test(hash)) return { page: "services" };
  if (/^#\/supervisor\/?$/.test(hash)) return { page: "supervisor" };
  const logs = /^#\/logs\/?(?:\?(.*))?$/.exec(hash);
  if (logs !== null) return { page: "logs", query: logs[1] ?? "" };
  const screener = /^#\/screener(?:\/([^?]*))?$/.exec(hash);
  if (screener !== null) return { page: "screener", screen: segment(screener[1]) || null };
  const backtest = /^#\/backtest(?:\/([^?]*))?$/.exec(hash);
  if (backtest !== null) return { page: "backtest", runId: segment(backtest[1]) || null };
  const advisor = /^#\/advisor(?:\/([^?]*))?$/.exec(hash);
  if (advisor !== null) return { page: "advisor", decisionId: segment(advisor[1]) || null };
  const match = /^#\/strategies(?:\/([^?]*))?(?:\?(.*))?$/.exec(hash);
  if (match === null) return { page: "overview" };
  const encoded = match[1] ?? "";
  const detector = new URLSearchParams(match[2] ?? "").get("detector") || null;
  try {
    return { page: "strategies", patchId: encoded === "" ? null : decodeURIComponent(encoded), detector };
  } catch {
    return { page: "strategies", patchId: null, detector };
  }
}

/** The hash of the strategies page of `detector`, with `patchId` open (or none). */
export function strategiesHash(patchId: string | null, detector: string | null): string {
  const path = patchId === null ? "#/strategies" : `#/strategies/${encodeURIComponent(patchId)}`;
  return detector === null ? path : `${path}?${new URLSearchParams({ detector }).toString()}`;
}

/** The hash of the advisor page with `decisionId` open (or none). */
export function advisorHash(decisionId: string | null): string {
  return decisionId === null ? "#/advisor" : `#/advisor/${encodeURIComponent(decisionId)}`;
}

/** One page shown at a time; the trading page's panels keep running (the book ladder and the tape
 * draw only while it is shown: app.ts redraws them when it is shown again), the overview, market,
 * strategies, advisor, risk, ledger, accounts, backtest, supervisor, services and logs pages'
 * loops run only while they are shown. */
export function showPage(
  route: Route,
  pages: {
    overview: OverviewPage;
    trading: HTMLElement;
    market: MarketBoardPage;
    strategies: StrategiesPage;
    advisor: AdvisorPage;
    risk: RiskPage;
    ledger: LedgerPage;
    accounts: AccountsPage;
    backtest: BacktestPage;
    supervisor: SupervisorPage;
    screener: ScreenerPage;
    services: ServicesPage;
    logs: LogsPage;
    nav: HTMLElement;
  },
): void {
  pages.overview.root.hidden = route.page !== "overview";
  pages.trading.hidden = route.page !== "trading";
  pages.market.root.hidden = route.page !== "market";
  pages.strategies.root.hidden = route.page !== "strategies";
  pages.advisor.root.hidden = route.page !== "advisor";
  pages.risk.root.hidden = route.page !== "risk";
  pages.ledger.root.hidden = route.page !== "ledger";
  pages.accounts.root.hidden = route.page !== "accounts";
  pages.backtest.root.hidden = route.page !== "backtest";
  pages.screener.root.hidden = route.page !== "screener";
  pages.services.root.hidden = route.page !== "services";
  pages.supervisor.root.hidden = route.page !== "supervisor";
  pages.logs.root.hidden = route.page !== "logs";
  document.body.dataset.page = route.page;
  for (const link of pages.nav.querySelectorAll("a")) {
    const current = link.id === `nav-${route.page}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (route.page === "overview") pages.overview.show();
  else pages.overview.hide();
  if (route.page === "market") pages.market.show();
  else pages.market.hide();
  if (route.page === "strategies") pages.strategies.show(route.patchId, route.detector);
  else pages.strategies.hide();
  if (route.page === "advisor") pages.advisor.show(route.decisionId);
  else pages.advisor.hide();
  if (route.page === "risk") pages.risk.show();
  else pages.risk.hide();
  if (route.page === "ledger") pages.ledger.show();
  else pages.ledger.hide();
  if (route.page === "accounts") pages.accounts.show();
  else pages.accounts.hide();
  if (route.page === "backtest") pages.backtest.show(route.runId);
  else pages.backtest.hide();
  if (route.page === "screener") pages.screener.show(route.screen);
  else pages.screener.hide();
  if (route.page === "services") pages.services.show();
  else pages.services.hide();
  if (route.page === "supervisor") pages.supervisor.show();
  else pages.supervisor.hide();
  if (route.page === "logs") pages.logs.show(route.query);
  else pages.logs.hide();
}
