"""GET /prometheus/targets: Prometheus HTTP service discovery over the registry (docs/operations.md).

The answer lists the instances ListServices does, and the lost ones (their heartbeats stopped
without an unregistration: trademesh.gateway.registry.state) labelled `lost="true"`; it asks what
ListServices asks over gRPC-web: `Authorization: Bearer <API key or Studio session>` whose key
holds the `read` scope (Prometheus: `authorization: {credentials_file: ...}` with a key from
`trademesh keys create prometheus`). Not the mesh token: that one opens every service's RPCs,
and a scraper needs to change nothing. Errors are JSON {"error": ...} and never repeat the credential.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trademesh.core.platform.access.contracts import Authenticator
from trademesh.core.platform.access.scopes import check_scope
from trademesh.core.platform.errors import PermissionDenied, Unauthenticated
from trademesh.gateway.registry.state import RegistryState
from trademesh.gateway.registry.targets import target_groups

__all__ = ["TARGETS_PATH", "targets_route"]

log = logging.getLogger(__name__)

TARGETS_PATH = "/prometheus/targets"
# Whoever may list the instances may list their targets.
_SCOPE_OF = ("trademesh.registry.v1.Registry", "ListServices")


def targets_route(state: RegistryState, auth: Authenticator) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            principal = await auth.authenticate(request.headers.get("authorization"))
            check_scope(principal, *_SCOPE_OF)
        except Unauthenticated as exc:
            return JSONResponse({"error": str(exc)}, 401, {"WWW-Authenticate": "Bearer"})
        except PermissionDenied as exc:
            log.info("refused %s: %s", TARGETS_PATH, exc)
            return JSONResponse({"error": str(exc)}, 403)
        # The lost after the live: a crashed instance is scraped (down) until it is drained.
        return JSONResponse(target_groups([*state.instances(), *state.lost()]))

    return Route(TARGETS_PATH, endpoint, methods=["GET"])
