// trademesh.tradeflow.v1.TradeFlow: orders, the account, executions (resumable) and its changes.
//
// AmendOrder cancels and replaces (Admin's capabilities say AMEND_MODE_CANCEL_REPLACE): the
// amended form is checked as a placement would be (its price band included) before the order is
// cancelled with the request's reason, and its replacement placed for what is left of the new
// size. The venue is one event loop: nothing fills between the cancel and the placement.

import { create } from "@bufbuild/protobuf";
import {
  AmendOrderResponseSchema,
  CancelAllOrdersResponseSchema,
  CancelOrderResponseSchema,
  GetBalancesResponseSchema,
  GetOrderResponseSchema,
  GetPositionsResponseSchema,
  ListFundingPaymentsResponseSchema,
  ListOpenOrdersResponseSchema,
  PlaceOrderResponseSchema,
  TradeFlow,
} from "../gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type * as tf from "../gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import { balanceToPb, orderToPb, positionToPb } from "../convert.js";
import type { Dec } from "../decimal.js";
import { FailedPrecondition, NotFound, Violations } from "../errors.js";
import type { Order, OrderRequest } from "../model.js";
import { isOpen } from "../model.js";
import type { Handlers, Sink } from "../rpc.js";
import {
  amendOrder,
  cancelReason,
  fundingRequest,
  orderRef,
  placeOrder,
  symbolFilter,
  type Amendment,
} from "../validate.js";
import type { Venue } from "../venue.js";

export const SERVICE = TradeFlow;

export const BY_REQUEST = "canceled by request";
const AMENDED = "amended";

export function tradeFlowHandlers(venue: Venue): Handlers {
  return {
    unary: {
      PlaceOrder: (request: tf.PlaceOrderRequest): tf.PlaceOrderResponse => {
        const checked = placeOrder(request, venue.instruments);
        if (checked === "stop") {
          throw new FailedPrecondition("stop orders are not supported by node-ref; the inspector emulates them");
        }
        venue.requireServing();
        const [order, duplicate] = venue.placeOrder(checked);
        return create(PlaceOrderResponseSchema, { order: orderToPb(order), duplicate });
      },
      CancelOrder: (request: tf.CancelOrderRequest): tf.CancelOrderResponse => {
        const ref = orderRef(request.orderId, request.clientOrderId);
        const reason = cancelReason(request.reason) || BY_REQUEST;
        return create(CancelOrderResponseSchema, {
          order: orderToPb(venue.cancelOrder(ref.orderId, ref.clientOrderId, reason)),
        });
      },
      CancelAllOrders: (request: tf.CancelAllOrdersRequest): tf.CancelAllOrdersResponse => {
        const symbol = symbolFilter(request.symbol, venue.instruments);
        const given = cancelReason(request.reason);
        const orders = venue.cancelAll(symbol, given === "" ? "cancel-all by request" : `cancel-all: ${given}`);
        return create(CancelAllOrdersResponseSchema, { orders: orders.map(orderToPb) });
      },
      AmendOrder: (request: tf.AmendOrderRequest): tf.AmendOrderResponse => {
        const change = amendOrder(request);
        const reason = cancelReason(request.reason) || AMENDED;
        venue.requireServing();
        return amend(venue, orderRef(request.orderId, request.clientOrderId), change, reason);
      },
      GetOrder: (request: tf.GetOrderRequest): tf.GetOrderResponse => {
        const ref = orderRef(request.orderId, request.clientOrderId);
        return create(GetOrderResponseSchema, { order: orderToPb(venue.exchange.get(ref.orderId, ref.clientOrderId)) });
      },
      ListOpenOrders: (request: tf.ListOpenOrdersRequest): tf.ListOpenOrdersResponse => {
        const symbol = symbolFilter(request.symbol, venue.instruments);
        return create(ListOpenOrdersResponseSchema, { orders: venue.exchange.openOrders(symbol).map(orderToPb) });
      },
      GetBalances: (): tf.GetBalancesResponse =>
        create(GetBalancesResponseSchema, {
          balances: venue.exchange.balances().map(balanceToPb),
          asOfNs: venue.clock.now(),
        }),
      GetPositions: (request: tf.GetPositionsRequest): tf.GetPositionsResponse => {
        const symbol = symbolFilter(request.symbol, venue.instruments);
        return create(GetPositionsResponseSchema, {
          positions: venue.exchange.positions(symbol).map(positionToPb),
          asOfNs: venue.clock.now(),
        });
      },
      ListFundingPayments: (request: tf.ListFundingPaymentsRequest): tf.ListFundingPaymentsResponse => {
        fundingRequest(request, venue.instruments, venue.clock.now());
        return create(ListFundingPaymentsResponseSchema, { payments: [] }); // spot has no funding
      },
    },
    stream: {
      StreamExecutions: (request: tf.StreamExecutionsRequest, sink: Sink) => streamExecutions(venue, request, sink),
      StreamAccount: (_request: tf.StreamAccountRequest, sink: Sink) => streamAccount(venue, sink),
    },
  };
}

function amend(
  venue: Venue,
  ref: { orderId: string; clientOrderId: string },
  change: Amendment,
  reason: string,
): tf.AmendOrderResponse {
  if (change.clientOrderId !== "") {
    const named = orderNamed(venue, change.clientOrderId);
    if (named !== null) {
      // Placed before: this amendment's replacement, asked again.
      return create(AmendOrderResponseSchema, { order: orderToPb(named), replaced: true, duplicate: true });
    }
  }
  const old = venue.exchange.get(ref.orderId, ref.clientOrderId);
  if (!isOpen(old.status)) {
    throw new FailedPrecondition(`order ${old.orderId} is ${old.status}, not open`);
  }
  if (change.unfilledOnly && old.filledSize.sign > 0) {
    throw new FailedPrecondition(
      `order ${old.orderId} has filled ${old.filledSize}: not amended (unfilled_only); it is unchanged`,
    );
  }
  const request = amendedRequest(venue, old, change);
  venue.exchange.checkBand(venue.exchange.market(old.symbol), request.price);
  const canceled = venue.cancelOrder(old.orderId, "", reason);
  const left = request.size.sub(canceled.filledSize);
  if (left.sign <= 0) {
    throw new FailedPrecondition(
      `order ${old.orderId} was cancelled with ${canceled.filledSize} filled, at or above the amended size: ` +
        "no replacement was placed",
    );
  }
  const [order] = venue.placeOrder({ ...request, size: left });
  return create(AmendOrderResponseSchema, { order: orderToPb(order), replaced: true, canceled: orderToPb(canceled) });
}

function orderNamed(venue: Venue, clientOrderId: string): Order | null {
  try {
    return venue.exchange.get("", clientOrderId);
  } catch (error) {
    if (error instanceof NotFound) {
      return null;
    }
    throw error;
  }
}

// The open order as the amendment makes it, checked as a placement would be, each bad value
// named by the AmendOrder field that set it.
function amendedRequest(venue: Venue, order: Order, change: Amendment): OrderRequest {
  const found = new Violations();
  const spec = venue.instruments.get(order.symbol)!;
  if (change.price !== null && order.type !== "limit") {
    found.add("price", `a ${order.type} order has no limit price`);
  }
  if (change.triggerPrice !== null) {
    found.add("trigger_price", "is for stop orders only");
  }
  const size: Dec = change.size ?? order.size;
  const price = change.price ?? order.price;
  if (size.lte(order.filledSize)) {
    found.add("size", `must be above the size filled so far, ${order.filledSize}`);
  } else if (!size.isMultipleOf(spec.lotSize)) {
    found.add("size", `${size} is not a multiple of the lot size ${spec.lotSize}`);
  } else if (size.lt(spec.minSize)) {
    found.add("size", `${size} is below the minimum size ${spec.minSize}`);
  }
  if (change.price !== null && !change.price.isMultipleOf(spec.tickSize)) {
    found.add("price", `${change.price} is not a multiple of the tick size ${spec.tickSize}`);
  }
  if (price !== null && size.mul(price).lt(spec.minNotional) && found.items.length === 0) {
    found.add("size", `notional ${size.mul(price)} is below the minimum ${spec.minNotional}`);
  }
  found.raiseAny();
  return {
    symbol: order.symbol,
    side: order.side,
    type: order.type,
    size,
    price,
    timeInForce: order.timeInForce,
    postOnly: order.postOnly,
    reduceOnly: order.reduceOnly,
    clientOrderId: change.clientOrderId,
  };
}

async function streamExecutions(venue: Venue, request: tf.StreamExecutionsRequest, sink: Sink): Promise<void> {
  request.symbols.forEach((symbol, index) => symbolFilter(symbol, venue.instruments, `symbols[${index}]`));
  venue.requireServing();
  const resume =
    request.resume === undefined ? null : { epoch: request.resume.epoch, position: request.resume.position };
  const hub = venue.executions;
  const subscriber = hub.subscribe(new Set(request.symbols), resume);
  void sink.gone.then(() => subscriber.outbox.end());
  try {
    // Headers now, not with the first execution: the client learns the stream is open, so
    // nothing it does from here on goes unseen.
    sink.sendHeaders();
    if (subscriber.header !== null) {
      await sink.write(subscriber.header);
    }
    for (;;) {
      const batch = await subscriber.next();
      if (batch === null || sink.cancelled) {
        return;
      }
      await sink.write(hub.response(batch));
    }
  } finally {
    hub.unsubscribe(subscriber);
  }
}

async function streamAccount(venue: Venue, sink: Sink): Promise<void> {
  venue.requireServing();
  const [subscriber, snapshot] = venue.account.subscribe();
  void sink.gone.then(() => subscriber.outbox.end());
  try {
    await sink.write(snapshot);
    for (;;) {
      const response = await subscriber.next();
      if (response === null || sink.cancelled) {
        return;
      }
      await sink.write(response);
    }
  } finally {
    venue.account.unsubscribe(subscriber);
  }
}
