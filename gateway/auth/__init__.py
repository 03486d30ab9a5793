"""The gateway's auth: named API keys in PostgreSQL, Studio's login sessions, `trademesh keys`.

auth = await GatewayAuth.open(database_url, session_secret, session_ttl_s)
principal = await auth.authenticate(request.headers.get("authorization"))
app_routes += auth.routes()          # POST /api/login
await auth.close()
"""

from gateway.auth.authenticator import DEFAULT_REFRESH_S, DEFAULT_SESSION_TTL_S, GatewayAuth
from gateway.auth.keyfile import ensure_key_file, read_key_file
from gateway.auth.login import LOGIN_PATH
from gateway.auth.sessions import session_secret_from_env

__all__ = [
    "DEFAULT_REFRESH_S",
    "DEFAULT_SESSION_TTL_S",
    "LOGIN_PATH",
    "GatewayAuth",
    "ensure_key_file",
    "read_key_file",
    "session_secret_from_env",
]
