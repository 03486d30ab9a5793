// Studio's pages, by the URL's hash: "#/" trading (the default), "#/strategies" and
// "#/strategies/<patch id, URI-encoded>" (that patch's view open), either strategies route with
// "?detector=<name>" naming the detector instance shown. A link or the browser's back button
// moves between them; a reload keeps the page.
import type { StrategiesPage } from "./strategies";

export type Route =
  | { page: "trading" }
  | { page: "strategies"; patchId: string | null; detector: string | null };

/** "#/strategies/trend%2Fsim%2FBTC%2FUSDT?detector=a" -> the strategies page of detector a
 * with that patch open. */
export function parseRoute(hash: string): Route {
  const match = /^#\/strategies(?:\/([^?]*))?(?:\?(.*))?$/.exec(hash);
  if (match === null) return { page: "trading" };
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

/** One page shown at a time; the trading page's panels keep running, the strategies page's
 * loops run only while it is shown. */
export function showPage(
  route: Route,
  pages: { trading: HTMLElement; strategies: StrategiesPage; nav: HTMLElement },
): void {
  pages.trading.hidden = route.page !== "trading";
  pages.strategies.root.hidden = route.page !== "strategies";
  document.body.dataset.page = route.page;
  for (const link of pages.nav.querySelectorAll("a")) {
    const current = link.id === `nav-${route.page}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (route.page === "strategies") pages.strategies.show(route.patchId, route.detector);
  else pages.strategies.hide();
}
