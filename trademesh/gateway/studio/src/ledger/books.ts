// What the Ledger page shows of the books, as plain data: accounts named for reading, the live
// transfer list (the recorded newest ones and the streamed ones as one list, newest first, each
// transfer once), the equity curves as chart points, and the steps of a trace in chain order.
import { type Account, type EquityPoint, LedgerKind, type Transfer } from "../gen/trademesh/ledger/v1/ledger_pb";
import { label } from "../lib/format";
import { compareDecimal } from "../lib/decimal";

const KEEP = 300;
const NS_PER_S = 1_000_000_000n;

/** The steps of a trace, signal first (TraceStep.kind). */
export const CHAIN = ["signal", "decision", "intent", "risk_check", "order", "fill", "transfer"] as const;

/** "realised pnl" */
export function ledgerName(kind: LedgerKind): string {
  return label(LedgerKind, kind);
}

/** "fees_paid · sim · BTC/USDT · trend · USDT": what the account is for. */
export function accountText(account: Account | undefined, id = ""): string {
  if (account === undefined || account.id === "") return id;
  return [account.codeName || String(account.code), account.venue, account.symbol, account.strategyId, account.asset]
    .filter((part) => part !== "")
    .join(" · ");
}

/** "pos", "neg" or "" (zero): the class a signed amount is shown with. */
export function sign(amount: string): string {
  if (amount === "") return "";
  const order = compareDecimal(amount, "0");
  return order > 0 ? "pos" : order < 0 ? "neg" : "";
}

/** The strategy's name as shown: "" is the book no strategy placed orders for. */
export function strategyName(strategyId: string): string {
  return strategyId === "" ? "(unattributed)" : strategyId;
}

function newerFirst(a: Transfer, b: Transfer): number {
  if (a.tsNs !== b.tsNs) return a.tsNs > b.tsNs ? -1 : 1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

export class TransferLog {
  private readonly transfers = new Map<string, Transfer>();

  /** Adds transfers (repeats ignored); true when any was new. */
  add(transfers: readonly Transfer[]): boolean {
    let added = false;
    for (const transfer of transfers) {
      if (this.transfers.has(transfer.id)) continue;
      this.transfers.set(transfer.id, transfer);
      added = true;
    }
    if (added && this.transfers.size > KEEP) {
      for (const old of this.list().slice(KEEP)) this.transfers.delete(old.id);
    }
    return added;
  }

  get size(): number {
    return this.transfers.size;
  }

  /** Newest first. */
  list(): Transfer[] {
    return [...this.transfers.values()].sort(newerFirst);
  }
}

export interface CurvePoint {
  /** Seconds since the epoch (the chart's time scale). */
  time: number;
  /** The cumulative PnL, as the ledger sent it. */
  pnl: string;
}

/** A curve on the chart's time scale: one point per second (the last of each), in time order. */
export function curvePoints(curve: readonly EquityPoint[]): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (const point of [...curve].sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0))) {
    const time = Number(point.tsNs / NS_PER_S);
    const last = points[points.length - 1];
    if (last !== undefined && last.time === time) last.pnl = point.pnl;
    else points.push({ time, pnl: point.pnl });
  }
  return points;
}

/** The trace's step kind as words: "risk_check" -> "risk check". */
export function stepName(kind: string): string {
  return kind.replaceAll("_", " ");
}

/** ns since the epoch as "2026-11-23 14:05:09.123 UTC". */
export function utcTime(tsNs: bigint): string {
  if (tsNs <= 0n) return "–";
  const iso = new Date(Number(tsNs / 1_000_000n)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)} UTC`;
}
