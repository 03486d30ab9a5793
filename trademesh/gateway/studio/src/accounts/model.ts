// What the Accounts page shows, as plain data. Every venue is one account at its exchange
// (docs/accounts.md): "binance.desk-a" is the account desk-a at binance, "binance" the exchange's
// one account. The registry's instances say where each runs (and whether it paper-trades), the
// venue's own Admin.GetStatus its exchange and account; its balances and positions come from its
// account stream (TradeFlow.StreamAccount: one snapshot, then what changed), kept per venue.
import type { GetStatusResponse } from "../gen/trademesh/admin/v1/admin_pb";
import type { Instance } from "../gen/trademesh/registry/v1/registry_pb";
import type { Balance, Position, StreamAccountResponse } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { isZero } from "../lib/decimal";

/** How the account trades: on the exchange, paper (the exchange's market, the sim's matching,
 * nothing sent), or at the sim (a whole simulated exchange). */
export type Mode = "live" | "paper" | "sim";

export interface VenueAccount {
  /** The venue name everything downstream keys on ("binance.desk-a"). */
  venue: string;
  exchange: string;
  /** "" for the exchange's one account (a venue run without --account). */
  account: string;
  mode: Mode;
  /** The registry's instance ids of its processes (replicas of one venue share its name). */
  instances: string[];
  addresses: string[];
}

/** "binance" and "desk-a" of "binance.desk-a" (docs/accounts.md: the first "." parts them). */
export function splitVenue(venue: string): { exchange: string; account: string } {
  const dot = venue.indexOf(".");
  return dot < 0 ? { exchange: venue, account: "" } : { exchange: venue.slice(0, dot), account: venue.slice(dot + 1) };
}

function modeOf(exchange: string, paper: boolean): Mode {
  if (paper) return "paper";
  return exchange === "sim" ? "sim" : "live";
}

/** One row per venue, its instances together, sorted by exchange then account; the venue's own
 * status names its exchange and account when it answered, its name when not. */
export function venueAccounts(
  instances: readonly Instance[],
  statuses: ReadonlyMap<string, GetStatusResponse>,
): VenueAccount[] {
  const byVenue = new Map<string, VenueAccount>();
  for (const instance of instances) {
    const status = statuses.get(instance.name);
    const named = splitVenue(instance.name);
    const exchange = status?.exchange || named.exchange;
    const account = status === undefined || status.exchange === "" ? named.account : status.account;
    const paper = instance.paper || status?.paper === true;
    const known = byVenue.get(instance.name);
    if (known === undefined) {
      byVenue.set(instance.name, {
        venue: instance.name,
        exchange,
        account,
        mode: modeOf(exchange, paper),
        instances: [instance.instanceId],
        addresses: [instance.address],
      });
    } else {
      known.instances.push(instance.instanceId);
      known.addresses.push(instance.address);
      if (paper) known.mode = "paper";
    }
  }
  return [...byVenue.values()].sort((a, b) => compare(a.exchange, b.exchange) || compare(a.account, b.account));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One account's balances and positions as its stream tells them: a snapshot replaces them,
 * a change updates the assets and symbols it names (a position of size 0 is closed). */
export class AccountState {
  private readonly balanceMap = new Map<string, Balance>();
  private readonly positionMap = new Map<string, Position>();
  asOfNs = 0n;
  /** Messages taken since the last snapshot, the snapshot included (0: nothing yet). */
  updates = 0;

  take(message: StreamAccountResponse): void {
    if (message.snapshot) {
      this.balanceMap.clear();
      this.positionMap.clear();
      this.updates = 0;
    }
    for (const balance of message.balances) this.balanceMap.set(balance.asset, balance);
    for (const position of message.positions) {
      if (isZero(position.size)) this.positionMap.delete(position.symbol);
      else this.positionMap.set(position.symbol, position);
    }
    if (message.asOfNs > this.asOfNs || message.snapshot) this.asOfNs = message.asOfNs;
    this.updates += 1;
  }

  /** By asset. */
  balances(): Balance[] {
    return [...this.balanceMap.values()].sort((a, b) => compare(a.asset, b.asset));
  }

  /** Open positions, by symbol. */
  positions(): Position[] {
    return [...this.positionMap.values()].sort((a, b) => compare(a.symbol, b.symbol));
  }
}
