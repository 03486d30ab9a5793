// trademesh.admin.v1.Admin: status and capabilities, the streams the venue publishes, the
// dead-man switch, reconnect and drain.

import { create } from "@bufbuild/protobuf";
import {
  AccountFeed,
  Admin,
  AddSubscriptionsResponseSchema,
  AmendMode,
  DeadManStatusSchema,
  DrainResponseSchema,
  GetStatusResponseSchema,
  HeartbeatResponseSchema,
  ListSubscriptionsResponseSchema,
  ReconnectResponseSchema,
  RemoveSubscriptionsResponseSchema,
  StreamState,
  StreamStatusSchema,
  SubscriptionSchema,
  VenueState,
} from "../gen/trademesh/admin/v1/admin_pb.js";
import type * as admin from "../gen/trademesh/admin/v1/admin_pb.js";
import { VENUE } from "../config.js";
import { CHANNEL_TO_PB } from "../convert.js";
import type { DeadManState } from "../deadman.js";
import type { StreamStats } from "../feed.js";
import type { Channel } from "../model.js";
import type { Handlers } from "../rpc.js";
import { heartbeatTtl, streamKeys } from "../validate.js";
import { streamKey, type Venue } from "../venue.js";

export const SERVICE = Admin;

const STREAM_STATE: Record<StreamStats["state"], StreamState> = {
  connecting: StreamState.CONNECTING,
  connected: StreamState.CONNECTED,
  disconnected: StreamState.DISCONNECTED,
  stopped: StreamState.STOPPED,
  failed: StreamState.FAILED,
};

function deadMan(state: DeadManState): admin.DeadManStatus {
  return create(DeadManStatusSchema, {
    armed: state.armed,
    ttlMs: state.ttlMs,
    deadlineNs: state.deadlineNs,
    trips: state.trips,
    lastTripNs: state.lastTripNs,
    keepsReduceOnly: true,
    lastTripCanceled: state.lastTripCanceled,
    lastTripKept: state.lastTripKept,
    native: { available: false, armed: false, detail: `${VENUE} is the exchange: its own timer is the switch` },
  });
}

function subscriptions(venue: Venue): admin.Subscription[] {
  return [...venue.active]
    .map((key) => key.split("\u0000") as [string, Channel])
    .sort(([s1, c1], [s2, c2]) => (s1 === s2 ? CHANNEL_TO_PB[c1] - CHANNEL_TO_PB[c2] : s1 < s2 ? -1 : 1))
    .map(([symbol, channel]) => create(SubscriptionSchema, { symbol, channel: CHANNEL_TO_PB[channel] }));
}

function streamStatus(venue: Venue, stats: StreamStats): admin.StreamStatus {
  return create(StreamStatusSchema, {
    symbol: stats.symbol,
    channel: CHANNEL_TO_PB[stats.channel],
    state: STREAM_STATE[stats.state],
    eventsPerS: Math.round(stats.eventsPerS * 1000) / 1000,
    eventsTotal: stats.eventsTotal,
    lastEventAgeMs: stats.lastRecvMs === null ? -1n : BigInt(Math.round(performance.now() - stats.lastRecvMs)),
    subscriberCount: venue.subscriberCount(stats.symbol, stats.channel),
    reconnects: stats.reconnects,
    resyncs: stats.resyncs,
  });
}

function venueState(venue: Venue, streams: admin.StreamStatus[]): VenueState {
  if (venue.state === "starting") {
    return VenueState.STARTING;
  }
  if (venue.state === "draining") {
    return VenueState.DRAINING;
  }
  const healthy = (s: admin.StreamStatus): boolean =>
    s.state === StreamState.CONNECTED || s.state === StreamState.STOPPED;
  return streams.every(healthy) ? VenueState.RUNNING : VenueState.DEGRADED;
}

export function adminHandlers(venue: Venue): Handlers {
  return {
    unary: {
      GetStatus: (): admin.GetStatusResponse => {
        const streams = venue.streams.all().map((stats) => streamStatus(venue, stats));
        return create(GetStatusResponseSchema, {
          venue: VENUE,
          state: venueState(venue, streams),
          startedNs: venue.startedNs,
          streams,
          subscriberCount: venue.fanout.subscribers.size + venue.executions.subscribers.size,
          deadMan: deadMan(venue.deadman.state()),
          capabilities: {
            stopOrders: false,
            amend: AmendMode.CANCEL_REPLACE,
            accountFeed: AccountFeed.PUSH,
            accountPollIntervalMs: 0,
            tradeHistory: true,
            allTickers: true,
          },
          paper: false,
          exchange: VENUE,
          account: "",
        });
      },
      ListSubscriptions: (): admin.ListSubscriptionsResponse =>
        create(ListSubscriptionsResponseSchema, { subscriptions: subscriptions(venue) }),
      AddSubscriptions: (request: admin.AddSubscriptionsRequest): admin.AddSubscriptionsResponse => {
        const keys = streamKeys(request.subscriptions, venue.instruments);
        venue.setStreams(new Set([...venue.active, ...keys.map(([s, c]) => streamKey(s, c))]));
        return create(AddSubscriptionsResponseSchema, { subscriptions: subscriptions(venue) });
      },
      RemoveSubscriptions: (request: admin.RemoveSubscriptionsRequest): admin.RemoveSubscriptionsResponse => {
        const removed = new Set(streamKeys(request.subscriptions, venue.instruments).map(([s, c]) => streamKey(s, c)));
        venue.setStreams(new Set([...venue.active].filter((key) => !removed.has(key))));
        return create(RemoveSubscriptionsResponseSchema, { subscriptions: subscriptions(venue) });
      },
      Heartbeat: (request: admin.HeartbeatRequest): admin.HeartbeatResponse =>
        create(HeartbeatResponseSchema, { deadMan: deadMan(venue.deadman.heartbeat(heartbeatTtl(request.ttlMs))) }),
      Reconnect: (): admin.ReconnectResponse => create(ReconnectResponseSchema, { streams: venue.reconnect() }),
      Drain: (request: admin.DrainRequest): admin.DrainResponse => {
        const [ended, kept] = venue.drain(request.cancelOpenOrders);
        return create(DrainResponseSchema, {
          streamsEnded: ended,
          ordersCanceled: kept.canceled.length,
          ordersKept: kept.kept,
        });
      },
    },
  };
}
