// Bearer-token auth of the venue's RPCs, by the Python venues' rules (trademesh/core/platform/rpc/auth.py
// with trademesh/venues/command.py's TRADING):
// - every RPC but health and reflection takes `authorization: Bearer <TRADEMESH_TOKEN>` (the mesh
//   token) or the trading credential; a wrong or missing token is UNAUTHENTICATED;
// - the order RPCs (PlaceOrder, CancelOrder, CancelAllOrders, AmendOrder) and Heartbeat (the
//   dead-man switch) take only the trading credential (TRADEMESH_TRADE_TOKEN): the mesh token is
//   PERMISSION_DENIED there, naming the credential; so is Drain with cancel_open_orders;
// - without TRADEMESH_TOKEN auth is off (dev mode): everything is open, unless a trading
//   credential is set, which the order RPCs then still require (PERMISSION_DENIED otherwise);
// - with the mesh token but no trading credential, the order RPCs are refused to every caller.
// Neither token ever appears in a message or a log line.

import { timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { ENV, SERVICE_LABEL } from "./config.js";
import { PermissionDenied, Unauthenticated } from "./errors.js";

export const DENIED = "missing or wrong bearer token (send metadata `authorization: Bearer <token>`)";

// Reachable without a token: load balancers and tools must see health and the schema.
export const OPEN_SERVICES = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1alpha.ServerReflection",
  "grpc.reflection.v1.ServerReflection",
]);

export const PRIVILEGED = new Set([
  "/trademesh.tradeflow.v1.TradeFlow/PlaceOrder",
  "/trademesh.tradeflow.v1.TradeFlow/CancelOrder",
  "/trademesh.tradeflow.v1.TradeFlow/CancelAllOrders",
  "/trademesh.tradeflow.v1.TradeFlow/AmendOrder",
  "/trademesh.admin.v1.Admin/Heartbeat",
]);
// Methods privileged only when a boolean field of their request is set: Drain cancels every
// open order when asked to, and is an order RPC then.
export const PRIVILEGED_WHEN_SET = new Map([["/trademesh.admin.v1.Admin/Drain", "cancelOpenOrders"]]);
const FIELD_NAMES: Record<string, string> = { cancelOpenOrders: "cancel_open_orders" };
const WHY = "only the inspector places and cancels orders at a venue";

// The token of the first `authorization` entry when its scheme is Bearer (any case).
export function bearerToken(metadata: Metadata): Buffer | null {
  const values = metadata.get("authorization");
  if (values.length === 0) {
    return null;
  }
  const text = String(values[0]).trim();
  const space = text.indexOf(" ");
  const scheme = space < 0 ? text : text.slice(0, space);
  return scheme.toLowerCase() === "bearer" && space >= 0 ? Buffer.from(text.slice(space + 1).trim()) : null;
}

function matches(presented: Buffer | null, expected: Buffer | null): boolean {
  if (presented === null || expected === null) {
    return false;
  }
  if (presented.length !== expected.length) {
    timingSafeEqual(expected, expected); // the same work whatever the length
    return false;
  }
  return timingSafeEqual(presented, expected);
}

export class Auth {
  private readonly mesh: Buffer | null;
  private readonly trade: Buffer | null;

  constructor(meshToken: string | null, tradeToken: string | null) {
    this.mesh = meshToken === null ? null : Buffer.from(meshToken);
    this.trade = tradeToken === null ? null : Buffer.from(tradeToken);
  }

  get isOff(): boolean {
    return this.mesh === null;
  }

  // Before the request is decoded: Unauthenticated or PermissionDenied, or the call goes in.
  checkMetadata(method: string, metadata: Metadata): void {
    const service = method.slice(1, method.lastIndexOf("/"));
    if (OPEN_SERVICES.has(service) || (this.mesh === null && this.trade === null)) {
      return;
    }
    if (PRIVILEGED.has(method)) {
      this.checkPrivileged(method, metadata, "");
      return;
    }
    if (this.mesh === null) {
      return; // dev mode: the reads (and a plain Drain) are open
    }
    const presented = bearerToken(metadata);
    // Both tokens compared (no early exit): the time says nothing about which one matched.
    const mesh = matches(presented, this.mesh);
    const trade = matches(presented, this.trade);
    if (!mesh && !trade) {
      throw new Unauthenticated(DENIED);
    }
  }

  // Once decoded: a request that sets a privileged field needs the trading credential.
  checkRequest(method: string, metadata: Metadata, request: object): void {
    const field = PRIVILEGED_WHEN_SET.get(method);
    if (
      field !== undefined &&
      (this.mesh !== null || this.trade !== null) &&
      (request as Record<string, unknown>)[field] === true
    ) {
      this.checkPrivileged(method, metadata, FIELD_NAMES[field] ?? field);
    }
  }

  private checkPrivileged(method: string, metadata: Metadata, field: string): void {
    const presented = bearerToken(metadata);
    const trade = matches(presented, this.trade);
    const mesh = matches(presented, this.mesh);
    if (trade) {
      return;
    }
    if (this.mesh === null || mesh) {
      throw new PermissionDenied(this.refusal(method, field));
    }
    throw new Unauthenticated(DENIED);
  }

  private refusal(method: string, field: string): string {
    const name = method.slice(method.lastIndexOf("/") + 1) + (field === "" ? "" : ` with ${field}`);
    if (this.trade === null) {
      return `${name} is refused: ${SERVICE_LABEL} has no trading credential configured (${ENV.tradeToken})`;
    }
    return `${name} needs the trading credential (${ENV.tradeToken}): ${WHY}`;
  }
}
