// The Studio session: a short-lived token from POST /api/login, kept in sessionStorage so a
// reload keeps it and closing the tab forgets it. The API key itself is never stored.

const STORAGE_KEY = "trademesh.session";

export interface Session {
  token: string;
  expiresAtMs: number;
  keyName: string;
}

/** A login the user can fix (bad key) or retry (gateway unreachable); the message says which. */
export class LoginError extends Error {}

function parse(raw: string | null): Session | null {
  if (raw === null) return null;
  try {
    const value = JSON.parse(raw) as Partial<Session>;
    if (typeof value.token !== "string" || typeof value.expiresAtMs !== "number") return null;
    return { token: value.token, expiresAtMs: value.expiresAtMs, keyName: String(value.keyName ?? "") };
  } catch {
    return null;
  }
}

/** The stored session, unless it is missing or already expired. */
export function loadSession(now = Date.now()): Session | null {
  const session = parse(sessionStorage.getItem(STORAGE_KEY));
  return session !== null && session.expiresAtMs > now ? session : null;
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

async function errorText(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: unknown };
    if (typeof body.error === "string" && body.error !== "") return body.error;
  } catch {
    // not JSON: fall through to the status line
  }
  return `login failed: HTTP ${response.status}`;
}

/** Trades an API key for a session token. */
export async function login(key: string): Promise<Session> {
  let response: Response;
  try {
    response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key }),
    });
  } catch {
    throw new LoginError("cannot reach the gateway; check that it runs and try again");
  }
  if (!response.ok) throw new LoginError(await errorText(response));
  const body = (await response.json()) as { token: string; expires_at_ms: number; key_name: string };
  return { token: body.token, expiresAtMs: body.expires_at_ms, keyName: body.key_name };
}

/** True when a session was stored, expired or not (an expired one explains the login screen). */
export function hasStoredSession(): boolean {
  return sessionStorage.getItem(STORAGE_KEY) !== null;
}
