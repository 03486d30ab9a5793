// Typed clients of the services Studio calls through the gateway, and the per-call options.
import { type CallOptions, type Client, createClient, type Transport } from "@connectrpc/connect";
import { Admin } from "../gen/trademesh/admin/v1/admin_pb";
import { Advisor } from "../gen/trademesh/advisor/v1/service_pb";
import { Backtest } from "../gen/trademesh/backtest/v1/backtest_pb";
import { History } from "../gen/trademesh/history/v1/history_pb";
import { Ledger } from "../gen/trademesh/ledger/v1/ledger_pb";
import { MarketData } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { Mux } from "../gen/trademesh/mux/v1/mux_pb";
import { Overwatch } from "../gen/trademesh/overwatch/v1/overwatch_pb";
import { Patch } from "../gen/trademesh/patch/v1/patch_pb";
import { Registry } from "../gen/trademesh/registry/v1/registry_pb";
import { Inspector } from "../gen/trademesh/risk/v1/inspector_pb";
import { Screener } from "../gen/trademesh/screener/v1/screener_pb";
import { Services } from "../gen/trademesh/services/v1/services_pb";
import { Supervisor } from "../gen/trademesh/supervisor/v1/supervisor_pb";
import { TradeFlow } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";

// Names the venue instance when several serve the same service (gateway/contracts.py).
export const TARGET_HEADER = "x-trademesh-target";

// Every unary call has a deadline: a hung upstream shows as an error, not a frozen panel.
const UNARY_TIMEOUT_MS = 10_000;

export interface Clients {
  registry: Client<typeof Registry>;
  admin: Client<typeof Admin>;
  advisor: Client<typeof Advisor>;
  backtest: Client<typeof Backtest>;
  history: Client<typeof History>;
  inspector: Client<typeof Inspector>;
  ledger: Client<typeof Ledger>;
  marketData: Client<typeof MarketData>;
  mux: Client<typeof Mux>;
  overwatch: Client<typeof Overwatch>;
  patch: Client<typeof Patch>;
  screener: Client<typeof Screener>;
  services: Client<typeof Services>;
  supervisor: Client<typeof Supervisor>;
  tradeFlow: Client<typeof TradeFlow>;
}

export function createClients(transport: Transport): Clients {
  return {
    registry: createClient(Registry, transport),
    admin: createClient(Admin, transport),
    advisor: createClient(Advisor, transport),
    backtest: createClient(Backtest, transport),
    history: createClient(History, transport),
    inspector: createClient(Inspector, transport),
    ledger: createClient(Ledger, transport),
    marketData: createClient(MarketData, transport),
    mux: createClient(Mux, transport),
    overwatch: createClient(Overwatch, transport),
    patch: createClient(Patch, transport),
    screener: createClient(Screener, transport),
    services: createClient(Services, transport),
    supervisor: createClient(Supervisor, transport),
    tradeFlow: createClient(TradeFlow, transport),
  };
}

/** Options of a unary call, to `venue` when given. */
export function unary(signal: AbortSignal, venue?: string): CallOptions {
  return {
    signal,
    timeoutMs: UNARY_TIMEOUT_MS,
    headers: venue === undefined ? {} : { [TARGET_HEADER]: venue },
  };
}
