// The one gRPC-web transport of a Studio session: same origin, binary protobuf (the gateway
// forwards the bytes unchanged), every call with the session's bearer token. Any call that
// answers UNAUTHENTICATED, unary or mid-stream, ends the session through onUnauthenticated.
import { Code, ConnectError, type Interceptor, type StreamResponse, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

type Message = StreamResponse["message"];

function watchStream(messages: Message, onUnauthenticated: () => void): Message {
  return {
    async *[Symbol.asyncIterator]() {
      try {
        yield* messages;
      } catch (error) {
        if (error instanceof ConnectError && error.code === Code.Unauthenticated) onUnauthenticated();
        throw error;
      }
    },
  };
}

function authInterceptor(token: string, onUnauthenticated: () => void): Interceptor {
  return (next) => async (request) => {
    request.header.set("Authorization", `Bearer ${token}`);
    try {
      const response = await next(request);
      return response.stream
        ? { ...response, message: watchStream(response.message, onUnauthenticated) }
        : response;
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) onUnauthenticated();
      throw error;
    }
  };
}

export function createTransport(token: string, onUnauthenticated: () => void): Transport {
  return createGrpcWebTransport({
    baseUrl: window.location.origin,
    useBinaryFormat: true,
    interceptors: [authInterceptor(token, onUnauthenticated)],
  });
}
