// What a failed call means for the user: log in again, wait for the gateway, or read the message.
import { Code, ConnectError } from "@connectrpc/connect";

export type FailureKind = "unauthenticated" | "unreachable" | "failed";

export interface Failure {
  kind: FailureKind;
  message: string;
}

function isNetworkError(error: ConnectError): boolean {
  // fetch() rejects with a TypeError when nothing answers; connect wraps it as UNKNOWN.
  return error.code === Code.Unknown && error.cause instanceof TypeError;
}

/** "not found", "deadline exceeded": the gRPC code as words. */
function codeName(code: Code): string {
  const name = Code[code] ?? String(code);
  return name.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

export function classify(error: unknown): Failure {
  if (!(error instanceof ConnectError)) {
    return { kind: "failed", message: error instanceof Error ? error.message : String(error) };
  }
  if (error.code === Code.Unauthenticated) {
    return { kind: "unauthenticated", message: "session expired, log in again" };
  }
  if (error.code === Code.Unavailable && /^HTTP 50[234]$/.test(error.rawMessage)) {
    return { kind: "unreachable", message: error.rawMessage };
  }
  if (isNetworkError(error)) {
    return { kind: "unreachable", message: "cannot reach the gateway" };
  }
  return { kind: "failed", message: `${codeName(error.code)}: ${error.rawMessage}` };
}

/** True when the call was stopped on purpose (the view moved on), which is not an error. */
export function isCanceled(error: unknown): boolean {
  return (
    (error instanceof ConnectError && error.code === Code.Canceled) ||
    (error instanceof DOMException && error.name === "AbortError")
  );
}
