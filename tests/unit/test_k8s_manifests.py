"""ops/k8s, validated offline: every overlay rendered (tests/kustomize.py), each object checked
against the Kubernetes JSON schemas of the versions we support (kubernetes-validate bundles
them), and against our own registries: commands the CLI parses, ports the service registry
gives, secrets only by reference, probes, resources and a disruption budget everywhere; and
against what `kubectl rollout` and `kubectl drain` do with them (docs/kubernetes.md, "Rollouts
and drains"): a standby Ready as a standby, rollouts that surge, budgets that let a drain evict
one pod at a time, replicas spread over nodes, read-only root filesystems, priority classes,
a NetworkPolicy for every workload behind a default deny, the signing keys with their holders
only, a Redis that requires its password, and production's image pinned by digest.

Each check is a function returning its problems, so the last tests can show that a broken
manifest is caught by each.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import kubernetes_validate
import pytest
import yaml

from tests.kustomize import SAFE_LOADER, KustomizeError, render, strategic_merge
from trademesh.core.cli import build_parser
from trademesh.core.domain.accounts import account_venue
from trademesh.core.platform.config import env
from trademesh.core.platform.logs.stream.config import LOG_STREAM
from trademesh.core.platform.rpc.server import LIVENESS_SERVICE, READINESS_SERVICE
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import METRICS_PORT_OFFSET, SERVICES, Kind
from trademesh.venues.registry import VENUES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "ops" / "k8s"
OVERLAYS = ("local", "production", "paper")
# The Kubernetes versions the manifests are validated against (strict: no unknown field).
KUBERNETES_VERSIONS = ("1.29", "1.31", "1.33")
IMAGE = "trademesh"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# The example venue account (docs/accounts.md): its Deployment, (exchange, account).
ACCOUNTS = {"venue-binance-desk-b": ("binance", "desk-b")}
# Variables that hold secrets (trademesh/core/platform/config/env.py) and any name that looks like one.
SECRET_VARIABLES = frozenset(
    {
        env.TOKEN,
        env.TRADE_TOKEN,
        env.SESSION_SECRET,
        env.LLM_API_KEY,
        env.TELEGRAM_BOT_TOKEN,
        env.NOTIFY_WEBHOOK_URL,
        env.REDIS_URL,
        env.DATABASE_URL,
        env.ADVISOR_SIGNING_KEY,
        env.DETECTOR_SIGNING_KEY,
    }
)
SECRET_LOOKING = re.compile(r"TOKEN|SECRET|PASSWORD|PASSPHRASE|API_KEY|SIGNING_KEY")
MESH_LABEL = {"app.kubernetes.io/part-of": "trademesh"}
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}
# The leader/standby services (docs/services.md, "Replicas and single writers"): their own
# ServiceAccount, which may get and patch pods (each sets its own pod-deletion-cost).
LEADERS = frozenset({"inspector", "ledger", "detector", "overwatch"})
LEADER_ACCOUNT = "trademesh-leader"
# The priority class of each workload: the trading path, and what it needs to act, first.
TRADING_PRIORITY, CORE_PRIORITY = "trademesh-trading", "trademesh-core"
TRADING_PATH = frozenset({"inspector", "ledger", "redis", "postgres"})  # and every venue
# The keys that sign the trading streams (docs/bus.md), each in the Secret trademesh-signing, and
# the workloads that hold each: its writer and the inspector, which checks it.
SIGNING_SECRET = "trademesh-signing"
SIGNING_HOLDERS = {
    env.ADVISOR_SIGNING_KEY: {"advisor", "inspector"},
    env.DETECTOR_SIGNING_KEY: {"detector", "inspector"},
}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

Obj = dict[str, Any]


# --- rendering and looking things up ------------------------------------------------------------


@functools.cache
def _rendered(overlay: str) -> bytes:
    """The overlay rendered once, pickled: unpickling makes a deep copy several times faster
    than copy.deepcopy does (the tests take some 120 copies)."""
    return pickle.dumps(render(K8S / "overlays" / overlay, env_fallback=".example"))


def overlay(name: str) -> list[Obj]:
    """The overlay's objects, a copy the caller may change."""
    objects: list[Obj] = pickle.loads(_rendered(name))
    return objects


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def ours(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, container) of every container running the trademesh image."""
    for workload in workloads(objects):
        for container in pod_spec(workload)["containers"]:
            if re.split("[:@]", container["image"].rpartition("/")[2])[0] == IMAGE:
                yield workload, container


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


@functools.cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


def parse(args: list[str]) -> argparse.Namespace:
    """The CLI's own parse; ValueError with argparse's message when it refuses the line."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return _parser().parse_args(args)
    except SystemExit:
        raise ValueError(stderr.getvalue().strip().splitlines()[-1]) from None


def expected_ports(args: argparse.Namespace) -> tuple[dict[str, int], int]:
    """The named ports the registry gives the service a command line runs, and its gRPC port."""
    entry = SERVICES[args.command]
    port = VENUES[args.name].default_port if entry.kind is Kind.VENUE else entry.port
    assert port is not None
    if entry.grpc_port is not None:  # the gateway: HTTP (and /metrics) on port, gRPC on grpc_port
        return {"http": port, "grpc": entry.grpc_port}, entry.grpc_port
    return {"grpc": port, "metrics": port + METRICS_PORT_OFFSET}, port


def env_of(container: Obj) -> dict[str, Obj]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def config_maps(objects: list[Obj]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


def named(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def budget_of(objects: list[Obj], workload: Obj) -> Obj | None:
    labels = pod_labels(workload)
    budgets = named(objects, "PodDisruptionBudget").values()
    return next((b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)), None)


def policies_of(objects: list[Obj], workload: Obj) -> list[Obj]:
    """The NetworkPolicies that select the workload's pods by their labels (a default deny's
    empty selector is not among them)."""
    return [
        p
        for p in named(objects, "NetworkPolicy").values()
        if selects(p["spec"]["podSelector"].get("matchLabels", {}), pod_labels(workload))
    ]


def numbered(port: int | str, workload: Obj) -> int | str:
    """A NetworkPolicy's port on the workload's pods: a named one is the container port of that
    name (the venues' policy opens `grpc` and `metrics`); one the pods do not name stays a name."""
    if isinstance(port, int):
        return port
    declared = {
        p["name"]: p["containerPort"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])
    }
    number: int | str = declared.get(port, port)
    return number


# --- the checks ---------------------------------------------------------------------------------


def schema_problems(objects: list[Obj], version: str) -> list[str]:
    problems = (_schema_problem(json.dumps(obj, sort_keys=True), version) for obj in objects)
    return [problem for problem in problems if problem is not None]


@functools.cache
def _schema_problem(text: str, version: str) -> str | None:
    """One object's schema violation (an object is validated once per version: the tests
    validate the same objects many times over)."""
    obj = json.loads(text)
    try:
        # kubernetes_validate reads its schema files (a kind's, and the 2 MB of definitions
        # every kind refers to) and lists its versions' folders afresh for each object: here
        # each is done once.
        with (
            mock.patch.object(kubernetes_validate.utils, "schema_contents", _schema_file),
            mock.patch.object(kubernetes_validate.utils, "all_versions", _schema_versions),
        ):
            kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}"
    return None


_schema_file = functools.cache(kubernetes_validate.utils.schema_contents)
_schema_versions = functools.cache(kubernetes_validate.utils.all_versions)


def command_problems(objects: list[Obj]) -> list[str]:
    """Every container of ours runs the image's entrypoint (trademesh) with arguments the CLI
    parses; $(VAR) in them names a variable of the container; no service is given venues."""
    problems = []
    for workload, container in ours(objects):
        where = workload["metadata"]["name"]
        if "command" in container:
            problems.append(f"{where}: overrides the image's entrypoint (trademesh)")
        try:
            args = parse(container.get("args", []))
        except ValueError as exc:
            problems.append(f"{where}: the CLI refuses {container.get('args')}: {exc}")
            continue
        for variable in re.findall(r"\$\((\w+)\)", " ".join(container["args"])):
            if variable not in env_of(container):
                problems.append(f"{where}: $({variable}) is no variable of the container")
        if getattr(args, "venue", []):
            problems.append(f"{where}: --venue {args.venue}; services find venues through the gateway")
    return problems


def port_problems(objects: list[Obj]) -> list[str]:
    """Flags, container ports, probes and Services all on the ports the registry gives."""
    problems = []
    services = [o for o in objects if o["kind"] == "Service"]
    for workload, container in ours(objects):
        where = workload["metadata"]["name"]
        args = parse(container["args"])
        ports, grpc_port = expected_ports(args)
        flags = {"host": args.host, "port": args.port, "grpc_port": getattr(args, "grpc_port", grpc_port)}
        wanted = {"host": "0.0.0.0", "port": ports.get("http", grpc_port), "grpc_port": grpc_port}
        if flags != wanted:
            problems.append(f"{where}: flags {flags}, the registry's {wanted}")
        if getattr(args, "metrics_port", None) is not None:
            problems.append(f"{where}: --metrics-port moves metrics off port + {METRICS_PORT_OFFSET}")
        declared = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if declared != ports:
            problems.append(f"{where}: container ports {declared}, the registry's {ports}")
        for probe in PROBES:
            probed = container.get(probe, {}).get("grpc", {}).get("port")
            if probed != grpc_port:
                problems.append(f"{where}: {probe} asks gRPC health on {probed}, not {grpc_port}")
        selecting = [s for s in services if selects(s["spec"].get("selector", {}), pod_labels(workload))]
        if not selecting:
            problems.append(f"{where}: no Service selects it")
        for service in selecting:
            served = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
            if served != {name: (port, port) for name, port in ports.items()}:
                problems.append(f"Service/{service['metadata']['name']}: ports {served}, registry {ports}")
    return problems


def secret_problems(objects: list[Obj]) -> list[str]:
    """A secret only ever by reference (secretKeyRef, or a Secret by envFrom), never a value in
    a manifest, a ConfigMap or a generated Secret other than the local overlay's example files."""
    problems = []
    for workload in workloads(objects):
        for container in pod_spec(workload)["containers"]:
            for name, variable in env_of(container).items():
                if name not in SECRET_VARIABLES and not SECRET_LOOKING.search(name):
                    continue
                if "secretKeyRef" not in variable.get("valueFrom", {}):
                    problems.append(f"{workload['metadata']['name']}: {name} is not from a secretKeyRef")
    for name, data in config_maps(objects).items():
        for key in data:
            if key in SECRET_VARIABLES or SECRET_LOOKING.search(key):
                problems.append(f"ConfigMap/{name}: holds {key}")
    return problems


def workload_problems(objects: list[Obj]) -> list[str]:
    """Every Deployment: probes, requests and limits, and a PodDisruptionBudget selecting it."""
    problems = []
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    for workload in workloads(objects):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        for container in pod_spec(workload)["containers"]:
            needed = PROBES if workload["kind"] == "Deployment" else PROBES[1:]
            problems += [f"{where}: no {probe}" for probe in needed if probe not in container]
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if set(resources.get(kind, {})) != {"cpu", "memory"}:
                    problems.append(f"{where}: {kind} not set for cpu and memory")
        if workload["kind"] == "Deployment":
            labels = pod_labels(workload)
            covering = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
            if len(covering) != 1:
                problems.append(f"{where}: {len(covering)} PodDisruptionBudgets, not one")
    return problems


def venue_policy_problems(objects: list[Obj]) -> list[str]:
    """Only mesh pods (and Prometheus, on the metrics ports) reach a venue pod."""
    problems = []
    for workload, container in ours(objects):
        args = parse(container["args"])
        if args.command != "venue":
            if pod_labels(workload).get("app.kubernetes.io/part-of") != "trademesh":
                problems.append(f"{workload['metadata']['name']}: not labelled a mesh pod")
            continue
        where = workload["metadata"]["name"]
        ports, grpc_port = expected_ports(args)
        applying = policies_of(objects, workload)
        if not applying:
            problems.append(f"{where}: no NetworkPolicy selects it")
        reachable: set[int | str] = set()
        for policy in applying:
            for rule in policy["spec"].get("ingress", []):
                opened = {numbered(p["port"], workload) for p in rule.get("ports", [])}
                for peer in rule.get("from", [{}]):
                    mesh = peer.get("podSelector", {}).get("matchLabels") == MESH_LABEL
                    monitoring = peer.get("namespaceSelector", {}).get("matchLabels") == MONITORING
                    if mesh and "namespaceSelector" not in peer:
                        reachable |= opened
                    elif not (monitoring and "podSelector" not in peer and grpc_port not in opened):
                        problems.append(f"{where}: {policy['metadata']['name']} lets {peer} in")
        if grpc_port not in reachable or ports["metrics"] not in reachable:
            problems.append(f"{where}: mesh pods cannot reach {ports}")
    for workload in workloads(objects):
        image = pod_spec(workload)["containers"][0]["image"]
        if IMAGE not in image and pod_labels(workload).get("app.kubernetes.io/part-of") == "trademesh":
            problems.append(f"{workload['metadata']['name']} ({image}) is labelled a mesh pod")
    return problems


def scrape_problems(objects: list[Obj]) -> list[str]:
    """Every pod of ours is annotated for Prometheus's pod discovery on its metrics port (the
    gateway's: its HTTP port), as the gateway's http_sd lists it."""
    problems = []
    for workload, container in ours(objects):
        ports, _ = expected_ports(parse(container["args"]))
        wanted = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(ports.get("metrics", ports.get("http"))),
            "prometheus.io/path": "/metrics",
        }
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        found = {key: annotations.get(key) for key in wanted}
        if found != wanted:
            problems.append(f"{workload['metadata']['name']}: pod annotations {found}, not {wanted}")
    return problems


def rollout_problems(objects: list[Obj]) -> list[str]:
    """What `kubectl rollout` needs of a leader/standby service: a standby Ready as a standby
    (readiness asks READINESS_SERVICE; startup and liveness LIVENESS_SERVICE), a RollingUpdate
    that brings a new pod up before an old one goes (maxSurge 1, maxUnavailable 0), and its own
    pod-deletion-cost set through the API (the leader ServiceAccount, its token, its pod's name
    and namespace), so the standby goes first. No other pod mounts a token."""
    problems = []
    for workload in workloads(objects):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        leader = name in LEADERS
        account = (spec.get("serviceAccountName"), spec.get("automountServiceAccountToken"))
        if account != ((LEADER_ACCOUNT, True) if leader else (None, False)):
            problems.append(f"{name}: serviceAccountName, automountServiceAccountToken {account}")
        if not leader:
            continue
        container = spec["containers"][0]
        asked = {probe: container.get(probe, {}).get("grpc", {}).get("service") for probe in PROBES}
        wanted = {"startupProbe": LIVENESS_SERVICE, "readinessProbe": READINESS_SERVICE}
        if asked != wanted | {"livenessProbe": LIVENESS_SERVICE}:
            problems.append(f"{name}: probes ask {asked}: a standby must be Ready and alive")
        strategy = workload["spec"].get("strategy")
        surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        if strategy != surge:
            problems.append(f"{name}: strategy {strategy}, not {surge}")
        fields = {
            n: v.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            for n, v in env_of(container).items()
        }
        if (fields.get("POD_NAME"), fields.get("POD_NAMESPACE")) != ("metadata.name", "metadata.namespace"):
            problems.append(f"{name}: no POD_NAME and POD_NAMESPACE to find its own pod by")
    role = named(objects, "Role").get(LEADER_ACCOUNT, {}).get("rules")
    if role != [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]:
        problems.append(f"Role/{LEADER_ACCOUNT}: rules {role}, not get and patch on pods alone")
    binding = named(objects, "RoleBinding").get(LEADER_ACCOUNT, {})
    bound = (
        binding.get("roleRef", {}).get("name"),
        [(s["kind"], s["name"]) for s in binding.get("subjects", [])],
    )
    if bound != (LEADER_ACCOUNT, [("ServiceAccount", LEADER_ACCOUNT)]):
        problems.append(f"RoleBinding/{LEADER_ACCOUNT}: binds {bound}")
    if LEADER_ACCOUNT not in named(objects, "ServiceAccount"):
        problems.append(f"ServiceAccount/{LEADER_ACCOUNT} missing")
    return problems


def disruption_problems(objects: list[Obj]) -> list[str]:
    """What `kubectl drain` needs: every budget lets one pod of its Deployment be evicted when all
    are Ready (maxUnavailable: 1; a minAvailable equal to the replicas blocks a drain for good),
    and a leader/standby's budget never counts a pod that is not Ready against a drain."""
    problems = []
    for workload in workloads(objects):
        budget = budget_of(objects, workload)
        if workload["kind"] != "Deployment" or budget is None:
            continue  # workload_problems: a Deployment without its budget
        name, spec = workload["metadata"]["name"], budget["spec"]
        shape = {k: spec.get(k) for k in ("maxUnavailable", "minAvailable")}
        if shape != {"maxUnavailable": 1, "minAvailable": None}:
            problems.append(f"PodDisruptionBudget/{name}: {shape}, not maxUnavailable: 1")
        if name in LEADERS and spec.get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
            problems.append(f"PodDisruptionBudget/{name}: a standby that is not Ready would hold a drain up")
    return problems


def placement_problems(objects: list[Obj]) -> list[str]:
    """Every workload: a read-only root filesystem with an emptyDir at /tmp, its priority class
    (one the base defines), and, with more than one replica, its pods spread over nodes."""
    problems = []
    classes = named(objects, "PriorityClass")
    for workload in workloads(objects):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        wanted = TRADING_PRIORITY if name in TRADING_PATH or name.startswith("venue-") else CORE_PRIORITY
        if spec.get("priorityClassName") != wanted or wanted not in classes:
            problems.append(f"{name}: priorityClassName {spec.get('priorityClassName')}, not {wanted}")
        scratch = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in spec["containers"]:
            if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: {container['name']}'s root filesystem is writable")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if mounts.get("/tmp") not in scratch:
                problems.append(f"{name}: {container['name']} has no emptyDir at /tmp")
        if workload["spec"].get("replicas", 1) > 1 and not _spread_over_nodes(workload):
            problems.append(f"{name}: {workload['spec']['replicas']} replicas not spread over nodes")
    return problems


def _spread_over_nodes(workload: Obj) -> bool:
    for constraint in pod_spec(workload).get("topologySpreadConstraints", []):
        labels = constraint.get("labelSelector", {}).get("matchLabels", {})
        if constraint["topologyKey"] == "kubernetes.io/hostname" and selects(labels, pod_labels(workload)):
            return bool(constraint["maxSkew"] == 1)
    return False


def network_problems(objects: list[Obj]) -> list[str]:
    """Ingress is denied by default, and each workload's own policy admits its callers alone:
    the mesh's pods, Prometheus (namespace monitoring) on a metrics port, and anyone on the
    gateway's ports. Every workload's ports are reachable by the mesh; the leader/standby pods
    reach the Kubernetes API."""
    problems = []
    if not any(_denies_all(p) for p in named(objects, "NetworkPolicy").values()):
        problems.append("no NetworkPolicy denies ingress to every pod by default")
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        ports = {
            p["name"]: p["containerPort"]
            for c in pod_spec(workload)["containers"]
            for p in c.get("ports", [])
        }
        # The ports that take calls (a metrics port answers /metrics alone): never Prometheus's.
        calls = {port for port_name, port in ports.items() if port_name not in ("metrics", "http")}
        public = set(ports.values()) if name == "gateway" else set()
        applying = policies_of(objects, workload)
        if not applying:
            problems.append(f"{name}: no NetworkPolicy of its own")
        reachable: set[int | str] = set()
        for policy in applying:
            for rule in policy["spec"].get("ingress", []):
                opened = {numbered(p["port"], workload) for p in rule.get("ports", [])}
                where = f"{name}: {policy['metadata']['name']}"
                for peer in rule.get("from", [None]):
                    kind = _peer_kind(peer)
                    if not opened:
                        problems.append(f"{where} opens every port to {peer}")
                    elif kind == "mesh" or (kind == "anyone" and opened <= public):
                        reachable |= opened
                    elif kind != "monitoring" or opened & calls:
                        problems.append(f"{where} lets {peer or 'anyone'} reach {sorted(opened)}")
        if not set(ports.values()) <= reachable:
            problems.append(f"{name}: the mesh cannot reach {sorted(set(ports.values()) - reachable)}")
        if name in LEADERS and not _reaches_the_api(objects, workload):
            problems.append(f"{name}: an egress policy keeps it from the Kubernetes API")
    return problems


def _denies_all(policy: Obj) -> bool:
    spec = policy["spec"]
    return spec["podSelector"] == {} and spec.get("policyTypes") == ["Ingress"] and not spec.get("ingress")


def _peer_kind(peer: Obj | None) -> str:
    """ "anyone" (no `from`), "mesh" (this namespace's mesh pods), "monitoring" (that namespace's
    pods), or "other"."""
    if peer is None:
        return "anyone"
    if set(peer) == {"podSelector"} and peer["podSelector"].get("matchLabels") == MESH_LABEL:
        return "mesh"
    if set(peer) == {"namespaceSelector"} and peer["namespaceSelector"].get("matchLabels") == MONITORING:
        return "monitoring"
    return "other"


def _reaches_the_api(objects: list[Obj], workload: Obj) -> bool:
    """Egress is open (no Egress policy selects the pod), or one admits HTTPS to anywhere."""
    every_pod = [p for p in named(objects, "NetworkPolicy").values() if p["spec"]["podSelector"] == {}]
    egress = [
        p for p in policies_of(objects, workload) + every_pod if "Egress" in p["spec"].get("policyTypes", [])
    ]
    if not egress:
        return True
    return any(
        "to" not in rule and {443, 6443} <= {p.get("port") for p in rule.get("ports", [])}
        for policy in egress
        for rule in policy["spec"].get("egress", [])
    )


def signing_problems(objects: list[Obj]) -> list[str]:
    """Each signing key reaches exactly its holders (its writer and the inspector), from the
    Secret trademesh-signing, as each service's ServiceCommand declares it."""
    problems = []
    for key, wanted in SIGNING_HOLDERS.items():
        holders = set()
        for workload, container in ours(objects):
            name = workload["metadata"]["name"]
            variable = env_of(container).get(key)
            declared = key in load_command(SERVICES[parse(container["args"]).command]).secrets()
            if variable is None:
                if declared:
                    problems.append(f"{name}: its ServiceCommand holds {key}, its container lacks it")
                continue
            holders.add(name)
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref != {"name": SIGNING_SECRET, "key": key}:
                problems.append(f"{name}: {key} from {ref}, not {SIGNING_SECRET} (required)")
            if not declared:
                problems.append(f"{name}: given {key}, which its ServiceCommand does not hold")
        if holders != wanted:
            problems.append(f"{key}: given to {sorted(holders)}, not {sorted(wanted)}")
    return problems


def image_problems(objects: list[Obj]) -> list[str]:
    """Every container of ours runs an image pinned by its digest (production)."""
    return [
        f"{workload['metadata']['name']}: {container['image']} is not pinned by digest"
        for workload, container in ours(objects)
        if not DIGEST.search(container["image"])
    ]


def redis_problems(objects: list[Obj]) -> list[str]:
    """The local Redis requires the password from the mesh's Secret (an empty one ends its start:
    `requirepass ""` would let anyone in), its probes ask with it, and the REDIS_URL every service
    reads carries the same one."""
    problems = []
    redis = next(w for w in workloads(objects) if w["metadata"]["name"] == "redis")
    container = pod_spec(redis)["containers"][0]
    argv = " ".join(container.get("command", []) + container.get("args", []))
    if '--requirepass "${REDIS_PASSWORD:?' not in argv:
        problems.append(f"redis: {argv!r} requires no password, or an empty one")
    for variable in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        ref = env_of(container).get(variable, {}).get("valueFrom", {}).get("secretKeyRef")
        if ref != {"name": "trademesh-mesh", "key": "REDIS_PASSWORD"}:
            problems.append(f"redis: {variable} from {ref}")
    for probe in ("readinessProbe", "livenessProbe"):
        command = " ".join(container.get(probe, {}).get("exec", {}).get("command", []))
        if "redis-cli ping" not in command or "PONG" not in command:
            problems.append(f"redis: {probe} {command!r} does not check the answer is PONG")
    secret = named(objects, "Secret")["trademesh-mesh"]["data"]
    url = urllib.parse.urlsplit(base64.b64decode(secret[env.REDIS_URL]).decode())
    password = base64.b64decode(secret.get("REDIS_PASSWORD", "")).decode()
    if not password or url.password != password or url.hostname != "redis":
        problems.append("trademesh-mesh: REDIS_URL does not carry REDIS_PASSWORD to redis")
    return problems


# --- the manifests pass every check ---------------------------------------------------------------


# The paper overlay is the local one and a ConfigMap key: its schemas checked at the newest version.
SCHEMA_CASES = [(n, v) for n in OVERLAYS if n != "paper" for v in KUBERNETES_VERSIONS] + [
    ("paper", KUBERNETES_VERSIONS[-1])
]


@pytest.mark.parametrize(("name", "version"), SCHEMA_CASES)
def test_every_object_is_valid_for_the_kubernetes_version(name: str, version: str) -> None:
    assert schema_problems(overlay(name), version) == []


@pytest.mark.parametrize(
    "check",
    [
        command_problems,
        port_problems,
        secret_problems,
        workload_problems,
        venue_policy_problems,
        scrape_problems,
        rollout_problems,
        disruption_problems,
        placement_problems,
        network_problems,
        signing_problems,
    ],
)
@pytest.mark.parametrize("name", OVERLAYS)
def test_the_overlay_passes(name: str, check: Callable[[list[Obj]], list[str]]) -> None:
    assert check(overlay(name)) == []


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_service_and_venue_runs_once_under_its_own_name(name: str) -> None:
    running = {}
    for workload, container in ours(overlay(name)):
        args = parse(container["args"])
        running[workload["metadata"]["name"]] = args.name if args.command == "venue" else args.command
    # Every service the registry marks deployed (none is not: tests/unit/test_deploy_files.py, NOT_DEPLOYED).
    deployed = [n for n, entry in SERVICES.items() if entry.deployed and n != "venue"]
    expected = {f"venue-{v}": v for v in VENUES} | {n: n for n in deployed}
    assert running == expected | {name: exchange for name, (exchange, _) in ACCOUNTS.items()}


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_service_registers_with_the_gateway_at_its_own_pod_address(name: str) -> None:
    objects = overlay(name)
    gateway = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "gateway")
    grpc_port = next(p["port"] for p in gateway["spec"]["ports"] if p["name"] == "grpc")
    maps = config_maps(objects)
    for workload, container in ours(objects):
        where = workload["metadata"]["name"]
        settings: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                settings |= maps[source["configMapRef"]["name"]]
        assert settings[env.GATEWAY] == f"gateway:{grpc_port}", where
        advertised = env_of(container)[env.ADVERTISE_HOST]["valueFrom"]["fieldRef"]["fieldPath"]
        assert advertised == "status.podIP", where
        assert env.TOKEN in env_of(container), where
        assert settings.get(env.LOG_FORMAT) == "json", where
        # Its log lines reach LogHub's stream (docs/logs.md): through its bus, or named for it.
        streamed = env_of(container).get(LOG_STREAM) or env_of(container).get(env.REDIS_URL)
        assert streamed is not None and streamed["valueFrom"]["secretKeyRef"]["key"] == env.REDIS_URL, where


@pytest.mark.parametrize("name", OVERLAYS)
def test_only_the_venues_and_the_inspector_get_the_trading_credential(name: str) -> None:
    for workload, container in ours(overlay(name)):
        args = parse(container["args"])
        holds = env.TRADE_TOKEN in load_command(SERVICES[args.command]).secrets()
        assert (env.TRADE_TOKEN in env_of(container)) == holds, workload["metadata"]["name"]
        if args.command == "venue" and args.account is not None:
            continue  # an account's own credentials: the next test
        if args.command == "venue" and args.name != "sim":
            secret = f"trademesh-venue-{args.name}"
            assert {"secretRef": {"name": secret, "optional": True}} in container["envFrom"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_an_example_account_runs_apart_with_its_own_secret_and_trading_credential(name: str) -> None:
    """docs/accounts.md: `venue EXCHANGE --account ACCOUNT` in its own Deployment and Service
    (its own pod: the exchange's ports), at 0 replicas until its Secret exists; that Secret
    required (a live account refuses to start without credentials), never the exchange's; its own
    trading credential, optional, given to it and the inspector alone."""
    objects = overlay(name)
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    running = {workload["metadata"]["name"]: (workload, container) for workload, container in ours(objects)}
    for deployment, (exchange, account) in ACCOUNTS.items():
        workload, container = running[deployment]
        args = parse(container["args"])
        assert (args.name, args.account) == (exchange, account)
        assert workload["spec"]["replicas"] == 0 and workload["spec"]["strategy"]["type"] == "Recreate"
        assert deployment in services
        secrets = [source["secretRef"] for source in container["envFrom"] if "secretRef" in source]
        assert secrets == [{"name": f"trademesh-venue-{exchange}-{account}"}]  # required, its own
        own = env.venue_variable(account_venue(exchange, account), env.VENUE_TRADE_TOKEN)
        holders = {w["metadata"]["name"] for w, c in ours(objects) if own in env_of(c)}
        assert holders == {deployment, "inspector"}
        for holder in holders:
            ref = env_of(running[holder][1])[own]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "trademesh-trade", "key": own, "optional": True}, holder


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_telegram_bot_waits_at_0_replicas_for_its_own_secret(name: str) -> None:
    """docs/telegram.md: one replica at most (Recreate), at 0 until its Secret exists (its token,
    key and chats: required, read by no other pod); through the gateway's tools."""
    objects = overlay(name)
    running = {workload["metadata"]["name"]: (workload, container) for workload, container in ours(objects)}
    workload, container = running["telegram"]
    assert workload["spec"]["replicas"] == 0 and workload["spec"]["strategy"] == {"type": "Recreate"}
    assert parse(container["args"]).gateway_url == "http://gateway:8081"
    readers = {
        w["metadata"]["name"]
        for w, c in ours(objects)
        if {"secretRef": {"name": "trademesh-telegram"}} in c.get("envFrom", [])
    }
    assert readers == {"telegram"}


def test_the_local_overlay_generates_every_secret_the_pods_require() -> None:
    objects = overlay("local")
    generated = {o["metadata"]["name"]: set(o["data"]) for o in objects if o["kind"] == "Secret"}
    assert set(generated) == {
        "trademesh-mesh",
        "trademesh-trade",
        "trademesh-gateway",
        "trademesh-supervisor",
        "trademesh-signing",
    }
    for workload in workloads(objects):
        for container in pod_spec(workload)["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None and not ref.get("optional"):
                    assert ref["key"] in generated.get(ref["name"], set()), variable
    gitignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "ops/k8s/overlays/local/secrets/*.env" in gitignore
    examples = sorted(p.name for p in (K8S / "overlays" / "local" / "secrets").glob("*.example"))
    assert examples == [
        "gateway.env.example",
        "mesh.env.example",
        "signing.env.example",
        "supervisor.env.example",
        "trade.env.example",
    ]


def test_production_holds_no_secret_and_no_database_of_its_own() -> None:
    kinds = {o["kind"] for o in overlay("production")}
    assert "Secret" not in kinds and "StatefulSet" not in kinds
    local = {o["metadata"]["name"] for o in overlay("local") if o["kind"] == "StatefulSet"}
    assert local == {"redis", "postgres"}


def test_the_overlays_pin_the_image() -> None:
    """Production by its digest (kustomize edit set image trademesh=REGISTRY/trademesh@sha256:...;
    the committed one a placeholder of zeros, marked so); the local fleets the image built here."""
    images = {name: {c["image"] for _, c in ours(overlay(name))} for name in OVERLAYS}
    assert images["local"] == images["paper"] == {"trademesh:latest"}
    [production] = images["production"]
    assert re.fullmatch(r"[^@]+/trademesh@sha256:[0-9a-f]{64}", production)
    assert image_problems(overlay("production")) == []
    text = (K8S / "overlays" / "production" / "kustomization.yaml").read_text()
    if production.endswith("0" * 64):  # the committed placeholder says that it is one
        assert "PLACEHOLDER: the digest below is all zeros" in text


@pytest.mark.parametrize("name", ["local", "paper"])
def test_the_local_redis_requires_the_password_the_mesh_connects_with(name: str) -> None:
    assert redis_problems(overlay(name)) == []


def test_single_writers_stand_by_and_consumers_keep_their_bus_rules() -> None:
    base = {o["metadata"]["name"]: o for o in workloads(render(K8S / "base"))}
    assert {base[w]["spec"]["replicas"] for w in ("inspector", "ledger", "detector", "overwatch")} == {2}
    # docs/bars.md, "Replicas": the pods divide the trade streams by leases.
    assert base["bars"]["spec"]["replicas"] == 2 and "strategy" not in base["bars"]["spec"]
    assert base["ingest"]["spec"]["replicas"] == 2  # docs/scaling.md: the venues divided by leases
    # docs/bridge.md: every bridge replica its own consumer group.
    bridge = parse(pod_spec(base["bridge"])["containers"][0]["args"])
    assert "$(POD_NAME)" in bridge.group
    # docs/gateway-routing.md, "Replicas": the gateways share their registry through the bus.
    assert base["gateway"]["spec"]["replicas"] == 2
    assert parse(pod_spec(base["gateway"])["containers"][0]["args"]).shared_registry
    text = (K8S / "base" / "services" / "inspector.yaml").read_text()
    assert "replicas: 2  # leader + standby: only the holder of the leader lease" in text
    # docs/overview.md, "Replicas": one leader a timeframe, by its lease; no Recreate needed:
    # the leader/standby rollout (a new standby first, docs/kubernetes.md).
    assert base["overwatch"]["spec"]["strategy"] == base["inspector"]["spec"]["strategy"]
    assert base["overwatch"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


@pytest.mark.parametrize("name", OVERLAYS)
def test_a_standby_is_alive_and_ready_as_a_standby(name: str) -> None:
    """The single writers' startup and liveness probes ask the health service every process
    answers SERVING once up (leader or standby); readiness asks READINESS_SERVICE, SERVING on the
    leader and on a standby able to take over: a standby is never restarted for standing by, and
    counts as Ready, so a rollout and a drain go on (docs/kubernetes.md, "Rollouts and drains")."""
    objects = overlay(name)
    for writer in sorted(LEADERS):
        container = _container(objects, writer)
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["grpc"].get("service") == LIVENESS_SERVICE, (writer, probe)
        assert container["readinessProbe"]["grpc"].get("service") == READINESS_SERVICE, writer
    # Every other service: readiness is its API served ("", the overall health).
    for workload, container in ours(objects):
        if workload["metadata"]["name"] not in LEADERS:
            assert container["readinessProbe"]["grpc"].get("service", "") == "", workload["metadata"]["name"]


# --- a rollout and a drain, as the controllers take them ----------------------------------------
# A model of the Deployment controller's rolling update (kubernetes pkg/controller/deployment:
# scale the new ReplicaSet up to replicas + maxSurge, the old one down to what keeps
# replicas - maxUnavailable available), the ReplicaSet controller's choice of the pod to delete
# (not Ready first, then the lower pod-deletion-cost) and the Eviction API's budget arithmetic
# (disruptions allowed = Ready pods - (replicas - maxUnavailable)), run on a rendered manifest's
# strategy, readiness probe and budget. A pod is Ready when it leads, or as a standby when its
# readiness asks READINESS_SERVICE (the overall health is NOT_SERVING on a standby).


def _percent(value: int | str, replicas: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    share = replicas * int(value.rstrip("%")) / 100
    return int(-(-share // 1)) if round_up else int(share)


def _standby_ready(workload: Obj) -> bool:
    return bool(
        pod_spec(workload)["containers"][0]["readinessProbe"]["grpc"].get("service") == READINESS_SERVICE
    )


@dataclass
class _Pod:
    name: str
    new: bool
    leads: bool = False
    ready: bool = False


def simulate_rollout(workload: Obj) -> tuple[list[str], int] | None:
    """The pods deleted, in order, and the lease's handovers, once the rollout ends; None when it
    never does (`kubectl rollout status` then ends with "exceeded its progress deadline")."""
    replicas = workload["spec"]["replicas"]
    rolling = workload["spec"].get("strategy", {}).get("rollingUpdate", {})
    surge = _percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    standby_ready = _standby_ready(workload)
    pods = [_Pod(f"old-{i}", new=False, leads=i == 0) for i in range(replicas)]
    deleted: list[str] = []
    handovers = 0
    for _ in range(4 * replicas + 4):
        for pod in pods:  # the pods started last round have passed their probes (or not)
            pod.ready = pod.leads or standby_ready
        new = [p for p in pods if p.new]
        if len(new) == len(pods) == replicas and all(p.ready for p in pods):
            return deleted, handovers
        if len(new) < replicas and len(pods) < replicas + surge:
            count = min(replicas + surge - len(pods), replicas - len(new))
            pods += [_Pod(f"new-{len(new) + i}", new=True) for i in range(count)]
            continue
        old = [p for p in pods if not p.new]
        if not old or len(pods) - (replicas - unavailable) - sum(not p.ready for p in new) <= 0:
            continue  # nothing the controller may do this round
        # The ReplicaSet deletes a pod not Ready first, then the lower pod-deletion-cost.
        victim = min(old, key=lambda p: (p.ready, 1000 if p.leads else 0))
        pods.remove(victim)
        deleted.append(victim.name)
        if victim.leads:  # SIGTERM: the lease handed over to a standby
            handovers += 1
            pods[0].leads = True
    return None


def simulate_drain(workload: Obj, budget: Obj) -> list[str]:
    """`kubectl drain` of the leader's node, then at once of the standby's: each eviction
    granted or refused (429) as the budget says, with the replacements not yet Ready."""
    replicas = workload["spec"]["replicas"]
    spec = budget["spec"]
    if "maxUnavailable" in spec:
        desired = replicas - _percent(spec["maxUnavailable"], replicas, round_up=True)
    else:
        desired = _percent(spec["minAvailable"], replicas, round_up=True)
    always = spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
    ready = {"leader": True, "standby": _standby_ready(workload)}
    said = []
    for pod in ("leader", "standby"):
        healthy = sum(ready.values())
        # A Ready pod goes when a disruption is left; one not Ready when the budget is met
        # (IfHealthyBudget, the default) or always (AlwaysAllow).
        if (healthy - desired >= 1) if ready[pod] else (always or healthy >= desired):
            said.append(f"evicted {pod}")
            del ready[pod]
            ready["replacement-of-" + pod] = False  # scheduled elsewhere, starting
        else:
            said.append(f"{pod}: Cannot evict pod as it would violate the pod's disruption budget")
    return said


@pytest.mark.parametrize("name", OVERLAYS)
def test_a_rollout_replaces_the_standby_first_and_hands_the_lease_over_once(name: str) -> None:
    objects = overlay(name)
    for leader in sorted(LEADERS):
        done = simulate_rollout(_workload(objects, leader))
        assert done == (["old-1", "old-0"], 1), leader  # the standby, then the leader: one handover


@pytest.mark.parametrize("name", OVERLAYS)
def test_a_drain_evicts_the_leader_and_waits_for_its_replacement(name: str) -> None:
    objects = overlay(name)
    for leader in sorted(LEADERS):
        workload = _workload(objects, leader)
        budget = budget_of(objects, workload)
        assert budget is not None
        assert simulate_drain(workload, budget) == [
            "evicted leader",
            "standby: Cannot evict pod as it would violate the pod's disruption budget",
        ], leader  # kubectl drain tries the standby again every 5 s, until the replacement is Ready


def test_the_manifests_before_issue_56_deadlock_the_rollout_and_block_the_drain() -> None:
    """The model's own check: readiness on the overall health (a standby never Ready) and a
    budget of minAvailable: 1 gave the deadlock and the stuck drain the issue reports."""
    objects = overlay("production")
    workload = _workload(objects, "inspector")
    del _container(objects, "inspector")["readinessProbe"]["grpc"]["service"]
    assert simulate_rollout(workload) is None
    workload["spec"].pop("strategy")  # the default, 25 % / 25 %, as before: deadlocked too
    assert simulate_rollout(workload) is None
    assert simulate_drain(workload, {"spec": {"minAvailable": 1}}) == [
        "leader: Cannot evict pod as it would violate the pod's disruption budget",
        "evicted standby",  # not Ready: its eviction leaves the budget's one healthy pod
    ]


# --- each check catches what it is for ----------------------------------------------------------


def _container(objects: list[Obj], name: str) -> Obj:
    workload = next(w for w in workloads(objects) if w["metadata"]["name"] == name)
    container: Obj = pod_spec(workload)["containers"][0]
    return container


def _wrong_port(objects: list[Obj]) -> None:
    _container(objects, "venue-sim")["ports"][0]["containerPort"] = 5071


def _wrong_target_port(objects: list[Obj]) -> None:
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "bridge")
    service["spec"]["ports"][0]["targetPort"] = 5104


def _wrong_probe(objects: list[Obj]) -> None:
    _container(objects, "gateway")["livenessProbe"]["grpc"]["port"] = 8081


def _literal_secret(objects: list[Obj]) -> None:
    container = _container(objects, "ingest")
    for variable in container["env"]:
        if variable["name"] == env.TOKEN:
            variable.pop("valueFrom")
            variable["value"] = "hunter2"


def _secret_in_config_map(objects: list[Obj]) -> None:
    next(o for o in objects if o["kind"] == "ConfigMap")["data"]["TRADEMESH_OKX_API_SECRET"] = "x"


def _unknown_flag(objects: list[Obj]) -> None:
    _container(objects, "ingest")["args"].append("--no-such-flag")


def _venue_flag(objects: list[Obj]) -> None:
    _container(objects, "bars")["args"] += ["--venue", "sim=venue-sim:5070"]


def _schema_violation(objects: list[Obj]) -> None:
    next(w for w in workloads(objects))["spec"]["replicas"] = "two"


def _unknown_field(objects: list[Obj]) -> None:
    _container(objects, "ledger")["livenesProbe"] = {"grpc": {"port": 8010}}


def _no_probe(objects: list[Obj]) -> None:
    del _container(objects, "advisor")["readinessProbe"]


def _no_limits(objects: list[Obj]) -> None:
    del _container(objects, "recorder")["resources"]["limits"]


def _no_budget(objects: list[Obj]) -> None:
    objects[:] = [
        o for o in objects if (o["kind"], o["metadata"]["name"]) != ("PodDisruptionBudget", "ledger")
    ]


def _open_venue(objects: list[Obj]) -> None:
    policy = named(objects, "NetworkPolicy")["venues-from-mesh-only"]
    policy["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})


def _unscraped(objects: list[Obj]) -> None:
    workload = next(w for w in workloads(objects) if w["metadata"]["name"] == "bars")
    workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] = "5102"


def _workload(objects: list[Obj], name: str) -> Obj:
    return next(w for w in workloads(objects) if w["metadata"]["name"] == name)


def _standby_never_ready(objects: list[Obj]) -> None:
    del _container(objects, "ledger")["readinessProbe"]["grpc"]["service"]


def _rollout_without_surge(objects: list[Obj]) -> None:
    strategy = _workload(objects, "inspector")["spec"]["strategy"]
    strategy["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": 1}


def _recreated_leader(objects: list[Obj]) -> None:
    _workload(objects, "overwatch")["spec"]["strategy"] = {"type": "Recreate"}


def _no_deletion_cost(objects: list[Obj]) -> None:
    container = _container(objects, "detector")
    container["env"] = [v for v in container["env"] if v["name"] != "POD_NAME"]


def _token_everywhere(objects: list[Obj]) -> None:
    pod_spec(_workload(objects, "ingest"))["automountServiceAccountToken"] = True


def _role_widened(objects: list[Obj]) -> None:
    named(objects, "Role")[LEADER_ACCOUNT]["rules"][0]["verbs"].append("delete")


def _budget_blocks_drains(objects: list[Obj]) -> None:
    budget = named(objects, "PodDisruptionBudget")["inspector"]["spec"]
    del budget["maxUnavailable"]
    budget["minAvailable"] = 2


def _standby_holds_a_drain(objects: list[Obj]) -> None:
    del named(objects, "PodDisruptionBudget")["ledger"]["spec"]["unhealthyPodEvictionPolicy"]


def _not_spread(objects: list[Obj]) -> None:
    del pod_spec(_workload(objects, "gateway"))["topologySpreadConstraints"]


def _writable_root(objects: list[Obj]) -> None:
    _container(objects, "bars")["securityContext"]["readOnlyRootFilesystem"] = False


def _no_tmp(objects: list[Obj]) -> None:
    del _container(objects, "backtester")["volumeMounts"]


def _no_priority(objects: list[Obj]) -> None:
    del pod_spec(_workload(objects, "venue-sim"))["priorityClassName"]


def _venue_at_core_priority(objects: list[Obj]) -> None:
    pod_spec(_workload(objects, "venue-okx"))["priorityClassName"] = CORE_PRIORITY


def _no_default_deny(objects: list[Obj]) -> None:
    objects.remove(named(objects, "NetworkPolicy")["default-deny-ingress"])


def _unpoliced(objects: list[Obj]) -> None:
    objects.remove(named(objects, "NetworkPolicy")["recorder"])


def _inspector_open_to_all(objects: list[Obj]) -> None:
    rule = named(objects, "NetworkPolicy")["inspector"]["spec"]["ingress"][0]
    rule["from"].append({"namespaceSelector": {}})


def _leader_without_the_api(objects: list[Obj]) -> None:
    policy = named(objects, "NetworkPolicy")["ledger"]["spec"]
    policy["policyTypes"].append("Egress")
    policy["egress"] = [{"ports": [{"port": 53, "protocol": "UDP"}]}]


def _signing_key_leaks(objects: list[Obj]) -> None:
    key = env.ADVISOR_SIGNING_KEY
    ref = {"secretKeyRef": {"name": SIGNING_SECRET, "key": key}}
    _container(objects, "bridge")["env"].append({"name": key, "valueFrom": ref})


def _signing_key_missing(objects: list[Obj]) -> None:
    container = _container(objects, "inspector")
    container["env"] = [v for v in container["env"] if v["name"] != env.DETECTOR_SIGNING_KEY]


def _image_by_tag(objects: list[Obj]) -> None:
    _container(objects, "ledger")["image"] = "registry.example.com/trademesh:0.1.0"


def _redis_without_password(objects: list[Obj]) -> None:
    _container(objects, "redis")["args"] = ["exec redis-server --appendonly yes"]


def _redis_with_an_empty_password(objects: list[Obj]) -> None:
    _container(objects, "redis")["args"] = ['exec redis-server --requirepass "$REDIS_PASSWORD"']


def _redis_url_without_password(objects: list[Obj]) -> None:
    secret = named(objects, "Secret")["trademesh-mesh"]
    secret["data"][env.REDIS_URL] = base64.b64encode(b"redis://redis:6379/0").decode()


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (_wrong_port, port_problems),
        (_wrong_target_port, port_problems),
        (_wrong_probe, port_problems),
        (_literal_secret, secret_problems),
        (_secret_in_config_map, secret_problems),
        (_unknown_flag, command_problems),
        (_venue_flag, command_problems),
        (_schema_violation, lambda objects: schema_problems(objects, KUBERNETES_VERSIONS[0])),
        (_unknown_field, lambda objects: schema_problems(objects, KUBERNETES_VERSIONS[-1])),
        (_no_probe, workload_problems),
        (_no_limits, workload_problems),
        (_no_budget, workload_problems),
        (_open_venue, venue_policy_problems),
        (_unscraped, scrape_problems),
        (_standby_never_ready, rollout_problems),
        (_rollout_without_surge, rollout_problems),
        (_recreated_leader, rollout_problems),
        (_no_deletion_cost, rollout_problems),
        (_token_everywhere, rollout_problems),
        (_role_widened, rollout_problems),
        (_budget_blocks_drains, disruption_problems),
        (_standby_holds_a_drain, disruption_problems),
        (_not_spread, placement_problems),
        (_writable_root, placement_problems),
        (_no_tmp, placement_problems),
        (_no_priority, placement_problems),
        (_venue_at_core_priority, placement_problems),
        (_no_default_deny, network_problems),
        (_unpoliced, network_problems),
        (_inspector_open_to_all, network_problems),
        (_leader_without_the_api, network_problems),
        (_signing_key_leaks, signing_problems),
        (_signing_key_missing, signing_problems),
        (_image_by_tag, image_problems),
    ],
)
def test_a_broken_manifest_is_caught(
    breakage: Callable[[list[Obj]], None], check: Callable[[list[Obj]], list[str]]
) -> None:
    objects = overlay("production")
    assert check(objects) == []
    breakage(objects)
    assert check(objects) != []


@pytest.mark.parametrize(
    "breakage", [_redis_without_password, _redis_with_an_empty_password, _redis_url_without_password]
)
def test_a_local_redis_without_its_password_is_caught(breakage: Callable[[list[Obj]], None]) -> None:
    objects = overlay("local")
    assert redis_problems(objects) == []
    breakage(objects)
    assert redis_problems(objects) != []


# --- the renderer -------------------------------------------------------------------------------


def test_a_strategic_merge_merges_named_lists_by_name_and_replaces_others() -> None:
    target = {"containers": [{"name": "a", "image": "x", "args": ["1"]}], "keep": 1}
    patch = {"containers": [{"name": "a", "args": ["2"]}, {"name": "b", "image": "y"}]}
    assert strategic_merge(target, patch) == {
        "containers": [{"name": "a", "image": "x", "args": ["2"]}, {"name": "b", "image": "y"}],
        "keep": 1,
    }


def test_the_production_patch_and_replicas_reach_their_workloads() -> None:
    production = {w["metadata"]["name"]: w for w in workloads(overlay("production"))}
    assert production["recorder"]["spec"]["replicas"] == 3
    assert _container(list(production.values()), "ingest")["resources"]["limits"]["memory"] == "2Gi"
    assert all(
        o["metadata"].get("namespace") == "trademesh"
        for o in overlay("production")
        if o["kind"] not in ("Namespace", "PriorityClass")
    )


def test_the_renderer_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("patches: [{path: two.yaml}]\n")
    (tmp_path / "two.yaml").write_text("kind: A\n---\nkind: B\n")
    with pytest.raises(KustomizeError, match="2 documents"):
        render(tmp_path)


def _kubectls() -> list[str]:
    """The kubectl of each version we validate for, where installed beside the one on PATH
    (kubectl.1.29, ... as the Google Cloud SDK installs them: their kustomize versions differ),
    else the one on PATH alone."""
    found = shutil.which("kubectl")
    if found is None:
        return []
    beside = Path(found).resolve().parent
    versioned = [beside / f"kubectl.{v}" for v in KUBERNETES_VERSIONS]
    return [str(path) for path in versioned if path.is_file()] or [found]


@pytest.mark.skipif(not _kubectls(), reason="no kubectl here to compare with")
@pytest.mark.parametrize("name", OVERLAYS)
def test_the_renderer_agrees_with_kubectl_kustomize(name: str, tmp_path: Path) -> None:
    """Where kubectl is installed, its own kustomize renders each overlay to the same objects,
    with every kubectl version found."""
    copy_root = tmp_path / "k8s"
    shutil.copytree(K8S, copy_root)
    for example in (copy_root / "overlays" / "local" / "secrets").glob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    ours = sorted(map(_text, map(_decoded, overlay(name))))
    # Every version's kustomize at once (each spends most of its time loading its binary).
    with contextlib.ExitStack() as running:
        runs = {
            kubectl: running.enter_context(
                subprocess.Popen(
                    [kubectl, "kustomize", str(copy_root / "overlays" / name)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "GOGC": "400"},  # Go's collector a quarter as often: less CPU
                )
            )
            for kubectl in _kubectls()
        }
        for kubectl, run in runs.items():
            stdout, stderr = run.communicate(timeout=60)
            assert run.returncode == 0, (kubectl, stderr)
            theirs = [_decoded(o) for o in yaml.load_all(stdout, Loader=SAFE_LOADER) if o is not None]
            assert sorted(map(_text, theirs)) == ours, kubectl


def _text(obj: Obj) -> str:
    return json.dumps(obj, sort_keys=True)


def _decoded(obj: Obj) -> Obj:
    """A Secret's data decoded (kustomize folds long base64 lines)."""
    if obj["kind"] == "Secret":
        obj["data"] = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    return obj


def test_every_venue_writes_its_own_streams_to_the_bus() -> None:
    """The direct path (docs/bus.md): TRADEMESH_BUS_DIRECT=1 in the ConfigMap every venue reads,
    and the bus's URL from the mesh's Secret in every venue container, the accounts' too."""
    for name in OVERLAYS:
        objects = overlay(name)
        [config] = [
            o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "trademesh-env"
        ]
        assert config["data"][env.BUS_DIRECT] == "1", name
        venues = {
            w["metadata"]["name"]: c for w, c in ours(objects) if w["metadata"]["name"].startswith("venue-")
        }
        assert {f"venue-{v}" for v in VENUES} | set(ACCOUNTS) <= set(venues), name
        for venue, container in venues.items():
            assert {"configMapRef": {"name": "trademesh-env"}} in container.get("envFrom", []), venue
            url = env_of(container)[env.REDIS_URL]["valueFrom"]["secretKeyRef"]
            assert url == {"name": "trademesh-mesh", "key": env.REDIS_URL}, venue


def test_the_paper_overlay_turns_every_live_venue_to_paper_and_nothing_else() -> None:
    """ops/k8s/overlays/paper: the local fleet with TRADEMESH_PAPER=1 in the ConfigMap every
    container reads (trademesh/venues/command.py: a live venue paper-trades; the sim makes its own market);
    the local overlay itself stays live."""

    def config(name: str) -> dict[str, str]:
        objects = overlay(name)
        found = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "trademesh-env"]
        assert len(found) == 1
        data: dict[str, str] = found[0]["data"]
        return data

    paper, local = config("paper"), config("local")
    assert paper.get(env.PAPER) == "1" and env.PAPER not in local
    assert {k: v for k, v in paper.items() if k != env.PAPER} == local
    readers = {
        w["metadata"]["name"]
        for w, c in ours(overlay("paper"))
        if {"configMapRef": {"name": "trademesh-env"}} in c.get("envFrom", [])
    }
    assert {f"venue-{v}" for v in VENUES} <= readers


# --- a venue in another language (docs/venues.md): its own image, so `ours` leaves it out --------

NODE_REF, NODE_REF_IMAGE = "venue-node-ref", "trademesh-node-ref"
NODE_REF_DIR = ROOT / "trademesh" / "venues" / "node_ref"


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_venue_in_typescript_runs_its_own_image_as_a_venue_of_the_mesh(name: str) -> None:
    """Its image pinned as the trademesh one is; its port its own (src/config.ts, the Dockerfile);
    probes, Service and the venues' NetworkPolicy on it; the mesh token and the trading credential
    from the venues' Secrets, the gateway from the ConfigMap; no bus (ingest feeds its streams);
    the image's user."""
    objects = overlay(name)
    workload = named(objects, "Deployment")[NODE_REF]
    [container] = pod_spec(workload)["containers"]
    if name == "production":
        assert re.fullmatch(rf"[^@]+/{NODE_REF_IMAGE}@sha256:[0-9a-f]{{64}}", container["image"])
    else:
        assert container["image"] == f"{NODE_REF_IMAGE}:latest"
    config = (NODE_REF_DIR / "src" / "config.ts").read_text()
    declared = re.search(r"^export const DEFAULT_PORT = (\d+);$", config, re.MULTILINE)
    assert declared is not None
    port = int(declared[1])
    dockerfile = (NODE_REF_DIR / "Dockerfile").read_text()
    assert f"EXPOSE {port}" in dockerfile
    assert container["args"] == ["--host", "0.0.0.0", "--port", str(port)]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": port}
    assert {container[probe]["grpc"]["port"] for probe in PROBES} == {port}
    service = named(objects, "Service")[NODE_REF]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("grpc", port, port)
    ]
    assert [p["metadata"]["name"] for p in policies_of(objects, workload)] == ["venues-from-mesh-only"]
    variables = env_of(container)
    for variable, secret in ((env.TOKEN, "trademesh-mesh"), (env.TRADE_TOKEN, "trademesh-trade")):
        assert variables[variable]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": variable}
    assert variables[env.ADVERTISE_HOST]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env.REDIS_URL not in variables
    assert {"configMapRef": {"name": "trademesh-env"}} in container["envFrom"]
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user is not None
    context = pod_spec(workload)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (int(user[1]), int(user[2]))
