"""`trademesh supervisor`: its flags, its config, its app (trademesh.core.platform.service.command).

With an LLM endpoint set (TRADEMESH_LLM_BASE_URL, TRADEMESH_LLM_MODELS: the first is asked,
TRADEMESH_LLM_API_KEY: the advisor's settings) the model is asked at each look as well.

Its own API key comes from the environment (TRADEMESH_SUPERVISOR_API_KEY, made with
`trademesh keys create supervisor --scope read --scope trade`): it does what that key's scope
allows, no more."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.platform.config.env import SUPERVISOR_API_KEY
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.service.command import MeshView, ServiceCommand, add_redis_argument
from trademesh.core.platform.service.registry import LOCAL_GATEWAY_URL
from trademesh.core.supervisor.config import SupervisorConfig

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    parser.add_argument(
        "--gateway-url", default=LOCAL_GATEWAY_URL,
        help=f"the gateway whose tools it reads and acts through (default {LOCAL_GATEWAY_URL})",
    )  # fmt: skip
    add_flags(parser, SupervisorConfig)


def _config(args: argparse.Namespace) -> SupervisorConfig:
    from trademesh.core.platform.config.env import (
        LLM_API_KEY,
        LLM_BASE_URL,
        LLM_MODELS,
        REDIS_URL,
        read_secret,
        redis_url,
    )
    from trademesh.core.platform.errors import InvalidArgument
    from trademesh.core.platform.logs.redact import check_http_url

    key = read_secret(SUPERVISOR_API_KEY)
    if key is None:
        raise InvalidArgument.field(
            SUPERVISOR_API_KEY, "is not set: the supervisor acts with its own API key"
        )
    base_url, models = read_secret(LLM_BASE_URL), (read_secret(LLM_MODELS) or "").split(",")
    llm = None
    if base_url is not None:
        model = models[0].strip()
        if not model:
            raise InvalidArgument.field(LLM_MODELS, "is not set: the model the supervisor asks")
        llm = (check_http_url(base_url, LLM_BASE_URL, shown=False), model, read_secret(LLM_API_KEY))
    # The bus only when one is given: its audit trail is kept in memory otherwise (a local
    # default would mix the trails of every Supervisor on this machine).
    bus = redis_url(args.redis_url) if args.redis_url or read_secret(REDIS_URL) else None
    gateway = check_http_url(args.gateway_url, "gateway-url")
    return SupervisorConfig(gateway, key, llm=llm, redis_url=bus, **flag_values(args, SupervisorConfig))


def _create(config: SupervisorConfig) -> ServiceApp:
    from trademesh.core.supervisor.app import SupervisorApp

    return SupervisorApp(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    """In `trademesh up`: the mesh's gateway (its key is made by up: <data-dir>/supervisor-key)."""
    return ["--gateway-url", mesh.gateway_url] if mesh.gateway_url else []


COMMAND: ServiceCommand[SupervisorConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    holds=(SUPERVISOR_API_KEY,),
    settings=(SupervisorConfig,),
)
