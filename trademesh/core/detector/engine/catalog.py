"""The module catalog: type name -> module class, its description for the API, and loading
quants' own module classes (validated before they can be used).

Built-in types come from the modules under trademesh.core.detector.modules: every Module subclass
defined there with its own `spec`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from trademesh.core.detector.engine.graph import check_id
from trademesh.core.detector.engine.io import Sink, Source
from trademesh.core.detector.engine.module import Category, Module, ModuleSpec, Param, ParamKind, Port
from trademesh.core.platform.errors import InvalidArgument, NotFound, shown

__all__ = ["BUILTIN_PACKAGES", "Catalog", "describe_spec"]

BUILTIN_PACKAGES = (
    "trademesh.core.detector.modules.sources",
    "trademesh.core.detector.modules.fields",
    "trademesh.core.detector.modules.logic",
    "trademesh.core.detector.modules.math",
    "trademesh.core.detector.modules.scoring",
    "trademesh.core.detector.modules.sinks",
    "trademesh.core.detector.modules.indicators",
)
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?\Z")


class Catalog:
    def __init__(self) -> None:
        self.types: dict[str, type[Module]] = {}

    @classmethod
    def builtin(cls) -> Catalog:
        """Every built-in module type (packages not present yet are left out)."""
        catalog = cls()
        for name in BUILTIN_PACKAGES:
            if importlib.util.find_spec(name) is not None:
                catalog.register_all(_module_classes(importlib.import_module(name)))
        return catalog

    def register_all(self, classes: Iterable[type[Module]]) -> None:
        for module_class in classes:
            self.register(module_class)

    def register(self, module_class: object, *, custom: bool = False) -> type[Module]:
        """Add a module class after checking it; InvalidArgument naming what is wrong."""
        checked = _check_class(module_class, custom)
        if self.types.get(checked.spec.type) is checked:
            return checked  # the same class again (two strategy files naming it): nothing to do
        if checked.spec.type in self.types:
            raise InvalidArgument.field("type", f"module type {checked.spec.type!r} exists already")
        self.types[checked.spec.type] = checked
        return checked

    def load_custom(self, dotted_path: str) -> type[Module]:
        """A quant's module class, "package.module:Class" (or "package.module.Class")."""
        module_class = _import(dotted_path)
        try:
            return self.register(module_class, custom=True)
        except InvalidArgument as exc:
            raise InvalidArgument.field("module_class", f"{dotted_path}: {exc}") from None

    def get(self, type_name: str) -> type[Module]:
        module_class = self.types.get(type_name)
        if module_class is None:
            raise NotFound(f"no module type {shown(type_name)} in the catalog")
        return module_class

    def spec(self, type_name: str) -> ModuleSpec:
        return self.get(type_name).spec

    def describe(self) -> list[dict[str, Any]]:
        """Every module type as the API shows it, sorted by category then type."""
        specs = sorted((c.spec for c in self.types.values()), key=lambda s: (s.category.value, s.type))
        return [describe_spec(spec) for spec in specs]


def describe_spec(spec: ModuleSpec) -> dict[str, Any]:
    return {
        "type": spec.type,
        "category": spec.category.value,
        "description": spec.description,
        "time_driven": spec.time_driven,
        "inputs": [_port(port) for port in spec.inputs],
        "outputs": [_port(port) for port in spec.outputs],
        "params": [_param(param) for param in spec.params],
    }


def _port(port: Port) -> dict[str, Any]:
    return {
        "name": port.name,
        "type": port.type.value,
        "description": port.description,
        "optional": port.optional,
    }


def _param(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "kind": param.kind.value,
        "default": param.default,
        "minimum": param.minimum,
        "maximum": param.maximum,
        "choices": list(param.choices),
        "description": param.description,
    }


def _module_classes(module: ModuleType) -> list[type[Module]]:
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Module)
        and value.__module__ == module.__name__
        and "spec" in vars(value)
    ]


def _import(dotted_path: str) -> object:
    if not _DOTTED.match(dotted_path):
        raise InvalidArgument.field("module_class", f"{shown(dotted_path)} is not package.module:Class")
    module_name, colon, class_name = dotted_path.partition(":")
    if not colon:
        module_name, _, class_name = dotted_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument.field(
            "module_class", f"{dotted_path}: cannot import {module_name}: {exc}"
        ) from None
    if not hasattr(module, class_name):
        raise InvalidArgument.field("module_class", f"{dotted_path}: {module_name} has no {class_name}")
    return getattr(module, class_name)


def _check_class(module_class: object, custom: bool) -> type[Module]:
    if not (inspect.isclass(module_class) and issubclass(module_class, Module)):
        raise InvalidArgument.field("module_class", f"{_name(module_class)} is not a Module subclass")
    spec = getattr(module_class, "spec", None)
    if not isinstance(spec, ModuleSpec):
        raise InvalidArgument.field("spec", f"{_name(module_class)}.spec is not a ModuleSpec")
    if module_class.step is Module.step:
        raise InvalidArgument.field("step", f"{_name(module_class)} does not implement step")
    if custom and (
        spec.category in (Category.SOURCE, Category.SINK) or issubclass(module_class, Source | Sink)
    ):
        raise InvalidArgument.field(
            "category",
            "custom modules compute (indicator, logic, math, scoring): sources and sinks are built in",
        )
    _check_spec(spec)
    return module_class


def _check_spec(spec: ModuleSpec) -> None:
    if not isinstance(spec.type, str) or not _TYPE.match(spec.type):
        raise InvalidArgument.field("type", f"{shown(str(spec.type))} is not a type name (a-z, 0-9, _)")
    for what, ports in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        _unique([port.name for port in ports], what)
        for port in ports:
            check_id(port.name, what)
    _unique([param.name for param in spec.params], "params")
    for param in spec.params:
        _check_param(param)


def _check_param(param: Param) -> None:
    check_id(param.name, "params")
    if param.kind is ParamKind.CHOICE and not param.choices:
        raise InvalidArgument.field(f"params.{param.name}", "a choice parameter needs choices")
    try:
        param.check(param.default)
    except InvalidArgument as exc:
        raise InvalidArgument.field(f"params.{param.name}", f"the default does not pass: {exc}") from None


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidArgument.field(what, f"{name!r} is named twice")
        seen.add(name)


def _name(value: object) -> str:
    return getattr(value, "__qualname__", None) or shown(repr(value))
