// The page-wide banner for a gateway that does not answer: why, when the next try is, and a
// button to try now. It disappears as soon as any call gets through again.
import type { Connection, ConnectionState } from "../lib/connection";
import { fill, h } from "./dom";

export function connectionBanner(connection: Connection, signal: AbortSignal): HTMLElement {
  const banner = h("div", { id: "banner", class: "banner", role: "status", hidden: true });
  let state: ConnectionState = { down: false, reason: "", retryAtMs: 0 };
  const retry = h("button", { id: "banner-retry", type: "button" }, "Retry now");
  retry.addEventListener("click", () => connection.retryNow());
  const text = h("span");

  const render = (): void => {
    banner.hidden = !state.down;
    banner.dataset.state = state.down ? "down" : "up";
    if (!state.down) return;
    const seconds = Math.max(0, Math.ceil((state.retryAtMs - Date.now()) / 1000));
    text.textContent = `Gateway unreachable (${state.reason}). Reconnecting in ${seconds} s.`;
  };
  fill(banner, text, retry);
  const unsubscribe = connection.subscribe((next) => {
    state = next;
    render();
  });
  const ticker = setInterval(render, 500);
  signal.addEventListener("abort", () => {
    unsubscribe();
    clearInterval(ticker);
  });
  return banner;
}
