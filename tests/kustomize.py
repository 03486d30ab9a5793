"""A small kustomize renderer for the tests: what `kubectl kustomize` makes of ops/k8s, offline.

It knows exactly the kustomization fields ops/k8s uses and refuses any other, so a manifest
never relies on something rendered here differently than by kustomize:
- `resources`: YAML files (many documents each) and directories holding a kustomization.yaml;
- `namespace`: set on every namespaced object, and on a RoleBinding's ServiceAccount subjects
  that were in the binding's own namespace (none: both unset), as kustomize does;
- `patches` with a `path` to one document (kustomize before 5.1, as in kubectl 1.29, reads no
  more): strategic merge, targeted by the patch's kind and name (maps merge key by key; lists
  of maps that all carry a `name` merge by it, as containers, env and ports do in Kubernetes'
  own merge keys; any other list is replaced);
- `images` (name -> newName / newTag / digest) and `replicas` (name -> count);
- `secretGenerator` with `envs` files, under `generatorOptions: {disableNameSuffixHash: true}`
  (the base refers to Secrets by their plain names).
A missing env file may be read from `<file><fallback>` instead (the tests use the committed
`.example` files, since the real ones are never committed).
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SAFE_LOADER", "KustomizeError", "render", "strategic_merge"]

Obj = dict[str, Any]

_KNOWN = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "namespace",
        "patches",
        "images",
        "replicas",
        "secretGenerator",
        "generatorOptions",
    }
)
# Kinds that live outside namespaces (of those trademesh could deploy).
_CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "PriorityClass"}
)
_BINDINGS = frozenset({"RoleBinding", "ClusterRoleBinding"})
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
_SCALABLE = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
# PyYAML's safe loader, in C where libyaml is built in (the same constructor over a parser some
# ten times faster: the manifests are read once per overlay, and kubectl's output as often).
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KustomizeError(Exception):
    """A kustomization this renderer cannot render as kustomize would."""


def render(directory: Path, env_fallback: str | None = None) -> list[Obj]:
    """Every object the kustomization in `directory` renders, in resource order."""
    kustomization = _load_kustomization(directory)
    objects: list[Obj] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects.extend(render(path, env_fallback) if path.is_dir() else _documents(path))
    objects.extend(_generated_secrets(directory, kustomization, env_fallback))
    for patch in kustomization.get("patches", []):
        _apply_patch_file(objects, directory, patch)
    if "namespace" in kustomization:
        for obj in objects:
            _set_namespace(obj, kustomization["namespace"])
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for replicas in kustomization.get("replicas", []):
        _set_replicas(objects, replicas["name"], replicas["count"])
    return objects


def strategic_merge(target: Any, patch: Any) -> Any:
    """`patch` merged into `target` (a new value; neither is changed)."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for key, value in patch.items():
            merged[key] = strategic_merge(target[key], value) if key in target else copy.deepcopy(value)
        return merged
    if isinstance(target, list) and isinstance(patch, list) and _named(target) and _named(patch):
        by_name = {item["name"]: item for item in target}
        result = [strategic_merge(item, _find_named(patch, item["name"]) or {}) for item in target]
        result.extend(copy.deepcopy(item) for item in patch if item["name"] not in by_name)
        return result
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _find_named(items: list[Obj], name: str) -> Obj | None:
    return next((item for item in items if item["name"] == name), None)


def _load_kustomization(directory: Path) -> Obj:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    loaded: Obj = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    unknown = set(loaded) - _KNOWN
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not know: {sorted(unknown)}")
    return loaded


def _documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=SAFE_LOADER) if doc is not None]


def _generated_secrets(directory: Path, kustomization: Obj, env_fallback: str | None) -> list[Obj]:
    generators = kustomization.get("secretGenerator", [])
    if generators and not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise KustomizeError(f"{directory}: secretGenerator needs disableNameSuffixHash: true here")
    secrets = []
    for generator in generators:
        unknown = set(generator) - {"name", "envs", "type"}
        if unknown:
            raise KustomizeError(f"{directory}: secretGenerator fields not known here: {sorted(unknown)}")
        data: dict[str, str] = {}
        for name in generator.get("envs", []):
            for key, value in _env_file(directory / name, env_fallback).items():
                data[key] = base64.b64encode(value.encode()).decode()
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": generator["name"]},
                "type": generator.get("type", "Opaque"),
                "data": data,
            }
        )
    return secrets


def _env_file(path: Path, env_fallback: str | None) -> dict[str, str]:
    if not path.is_file() and env_fallback is not None:
        path = path.with_name(path.name + env_fallback)
    if not path.is_file():
        raise KustomizeError(f"{path}: no such env file")
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise KustomizeError(f"{path}: {line!r} is not KEY=VALUE")
        values[key] = value
    return values


def _apply_patch_file(objects: list[Obj], directory: Path, patch: Obj) -> None:
    if set(patch) != {"path"}:
        raise KustomizeError(f"{directory}: only `patches: [{{path: ...}}]` is known here, not {patch}")
    documents = _documents(directory / patch["path"])
    if len(documents) != 1:
        raise KustomizeError(f"{patch['path']}: {len(documents)} documents; kustomize < 5.1 reads one")
    [document] = documents
    target = (document["kind"], document["metadata"]["name"])
    matches = [i for i, obj in enumerate(objects) if (obj["kind"], obj["metadata"]["name"]) == target]
    if len(matches) != 1:
        raise KustomizeError(f"{patch['path']}: {'/'.join(target)} matches {len(matches)} objects")
    objects[matches[0]] = strategic_merge(objects[matches[0]], document)


def _set_namespace(obj: Obj, namespace: str) -> None:
    was = obj["metadata"].get("namespace")
    if obj["kind"] in _BINDINGS:
        for subject in obj.get("subjects", []):
            if subject["kind"] == "ServiceAccount" and subject.get("namespace") == was:
                subject["namespace"] = namespace
    if obj["kind"] not in _CLUSTER_SCOPED:
        obj["metadata"]["namespace"] = namespace


def _containers(obj: Obj) -> list[Obj]:
    if obj["kind"] not in _WORKLOADS:
        return []
    spec = obj["spec"]["template"]["spec"]
    containers: list[Obj] = spec.get("initContainers", []) + spec["containers"]
    return containers


def _set_image(objects: list[Obj], image: Obj) -> None:
    for obj in objects:
        for container in _containers(obj):
            name, tag, digest = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            digest = image.get("digest", digest)
            container["image"] = name + (f"@{digest}" if digest else f":{tag}" if tag else "")


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest of `name[:tag][@digest]` (a registry's host:port stays in the name)."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


def _set_replicas(objects: list[Obj], name: str, count: int) -> None:
    matches = [o for o in objects if o["kind"] in _SCALABLE and o["metadata"]["name"] == name]
    if not matches:
        raise KustomizeError(f"replicas: no workload named {name!r}")
    for obj in matches:
        obj["spec"]["replicas"] = count
