"""The gateway's auth: named API keys in PostgreSQL, Studio's login sessions, `trademesh keys`.

Imported by its modules (authenticator, keyfile, login, sessions, command): the package itself
imports nothing, so `trademesh keys` and the CLI's parser do not load the gateway.

auth = await GatewayAuth.open(database_url, session_secret, session_ttl_s)
principal = await auth.authenticate(request.headers.get("authorization"))
app_routes += auth.routes()          # POST /api/login
await auth.close()
"""
