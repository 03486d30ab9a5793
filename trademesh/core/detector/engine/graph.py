"""A patch's structure: modules (by id) joined by cables, and their evaluation order.

Pure structure: module specs and checked parameters, no module instances. Every change is
checked before anything is touched, so a refused change leaves the graph as it was; the
evaluation order (Kahn's algorithm, ties broken by the order modules were added) is
recomputed after every change that succeeds.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from trademesh.core.detector.engine.module import ModuleSpec
from trademesh.core.detector.engine.values import PortType
from trademesh.core.platform.errors import InvalidArgument, NotFound, shown

__all__ = ["MAX_CABLES", "MAX_MODULES", "Cable", "Endpoint", "Graph", "Node", "check_id"]

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
# A patch's size (docs/limits.md): the shipped strategies hold about ten modules and a dozen
# cables. Every evaluation walks the whole graph, and every change re-sorts it: without a cap one
# patch could take the detector's tick for itself.
MAX_MODULES = 256
MAX_CABLES = 1024
ParamValue = int | float | bool | str


def check_id(text: str, what: str) -> str:
    """A module id or port name: a letter or _, then letters, digits or _, at most 64."""
    if not _ID.match(text):
        raise InvalidArgument.field(what, f"{shown(text)} is not a valid name (letters, digits, _)")
    return text


class Endpoint(NamedTuple):
    """A port of a module: `module.port`. A named tuple, not a dataclass: an evaluation hashes
    endpoints dozens of times (values, fresh outputs), and a tuple hashes in C."""

    module: str
    port: str

    def __str__(self) -> str:
        return f"{self.module}.{self.port}"

    @classmethod
    def parse(cls, text: str, what: str = "cable") -> Endpoint:
        module, dot, port = text.strip().partition(".")
        if not dot:
            raise InvalidArgument.field(what, f"{shown(text)} is not module.port")
        return cls(check_id(module, what), check_id(port, what))


@dataclass(frozen=True, order=True)
class Cable:
    """From an output port to an input port."""

    source: Endpoint
    target: Endpoint

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"

    @classmethod
    def parse(cls, text: str, what: str = "cable") -> Cable:
        """ "a.out -> b.in" as a Cable."""
        source, arrow, target = text.partition("->")
        if not arrow:
            raise InvalidArgument.field(what, f"{shown(text)} is not 'module.output -> module.input'")
        return cls(Endpoint.parse(source, what), Endpoint.parse(target, what))


@dataclass(frozen=True)
class Node:
    id: str
    spec: ModuleSpec
    params: Mapping[str, ParamValue]


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        # By target: an input port takes at most one cable.
        self.cables: dict[Endpoint, Cable] = {}
        self.order: tuple[str, ...] = ()

    # ---- changes

    def add_module(self, module_id: str, spec: ModuleSpec, params: Mapping[str, object]) -> Node:
        check_id(module_id, "module")
        if module_id in self.nodes:
            raise InvalidArgument.field("module", f"a module {module_id!r} exists already")
        if len(self.nodes) >= MAX_MODULES:
            raise InvalidArgument.field(
                "module", f"the patch holds {MAX_MODULES} modules, the most a patch may"
            )
        try:
            checked = spec.checked_params(params)
        except InvalidArgument as exc:
            raise _within(exc, f"{module_id}.params") from None
        node = self.nodes[module_id] = Node(module_id, spec, checked)
        self._reorder()
        return node

    def remove_module(self, module_id: str) -> list[Cable]:
        """Remove a module and its cables; the cables removed."""
        self.node(module_id)
        removed = [c for c in self.cables.values() if module_id in (c.source.module, c.target.module)]
        for cable in removed:
            del self.cables[cable.target]
        del self.nodes[module_id]
        self._reorder()
        return removed

    def connect(self, cable: Cable) -> None:
        if len(self.cables) >= MAX_CABLES:
            raise InvalidArgument.field("cable", f"the patch holds {MAX_CABLES} cables, the most a patch may")
        source_type = self._port_type(cable.source, output=True)
        target_type = self._port_type(cable.target, output=False)
        if source_type is not target_type:
            raise InvalidArgument.field(
                "cable",
                f"{cable.source} is {source_type.value} but {cable.target} is {target_type.value}",
            )
        taken = self.cables.get(cable.target)
        if taken is not None:
            raise InvalidArgument.field("cable", f"{cable.target} is connected already ({taken})")
        cycle = self._path(cable.target.module, cable.source.module)
        if cycle is not None:
            path = " -> ".join([str(cable), *(f"{c.source} -> {c.target}" for c in cycle)])
            raise InvalidArgument.field("cable", f"{cable} would close a cycle: {path}")
        self.cables[cable.target] = cable
        self._reorder()

    def disconnect(self, cable: Cable) -> None:
        if self.cables.get(cable.target) != cable:
            raise NotFound(f"no cable {cable}")
        del self.cables[cable.target]
        self._reorder()

    def set_param(self, module_id: str, name: str, value: object) -> ParamValue:
        node = self.node(module_id)
        try:
            checked = node.spec.checked_params({**node.params, name: value})
        except InvalidArgument as exc:
            raise _within(exc, f"{module_id}.params") from None
        self.nodes[module_id] = replace(node, params=checked)
        return checked[name]

    # ---- queries

    def node(self, module_id: str) -> Node:
        node = self.nodes.get(module_id)
        if node is None:
            raise NotFound(f"no module {shown(module_id)} in the patch")
        return node

    def feeding(self, module_id: str) -> Iterator[Cable]:
        """The cables into a module's inputs."""
        return (c for c in self.cables.values() if c.target.module == module_id)

    def leaving(self, module_id: str) -> list[Cable]:
        """The cables out of a module's outputs, in a fixed order."""
        return sorted(c for c in self.cables.values() if c.source.module == module_id)

    def missing_inputs(self) -> list[Endpoint]:
        """Required (not optional) inputs without a cable, in evaluation order."""
        return [
            Endpoint(module_id, port.name)
            for module_id in self.order
            for port in self.nodes[module_id].spec.inputs
            if not port.optional and Endpoint(module_id, port.name) not in self.cables
        ]

    # ---- internals

    def _port_type(self, end: Endpoint, output: bool) -> PortType:
        node = self.nodes.get(end.module)
        if node is None:
            raise InvalidArgument.field("cable", f"no module {end.module!r} in the patch")
        port = node.spec.output(end.port) if output else node.spec.input(end.port)
        if port is None:
            kind = "output" if output else "input"
            names = ", ".join(p.name for p in (node.spec.outputs if output else node.spec.inputs))
            raise InvalidArgument.field(
                "cable",
                f"{node.spec.type} {end.module!r} has no {kind} {end.port!r} ({kind}s: {names or 'none'})",
            )
        return port.type

    def _path(self, start: str, goal: str) -> list[Cable] | None:
        """The cables of a path from module `start` to module `goal`, None when there is none."""
        if start == goal:
            return []
        came_by: dict[str, Cable] = {}
        stack, seen = [start], {start}
        while stack:
            module_id = stack.pop()
            for cable in self.leaving(module_id):
                nxt = cable.target.module
                if nxt in seen:
                    continue
                seen.add(nxt)
                came_by[nxt] = cable
                if nxt == goal:
                    return _walk_back(came_by, start, goal)
                stack.append(nxt)
        return None

    def _reorder(self) -> None:
        """Kahn's algorithm; among modules ready at once, the one added first goes first."""
        rank = {module_id: index for index, module_id in enumerate(self.nodes)}
        indegree = dict.fromkeys(self.nodes, 0)
        leaving: dict[str, list[str]] = {module_id: [] for module_id in self.nodes}
        for cable in self.cables.values():
            indegree[cable.target.module] += 1
            leaving[cable.source.module].append(cable.target.module)
        ready = [(rank[m], m) for m, degree in indegree.items() if degree == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, module_id = heapq.heappop(ready)
            order.append(module_id)
            for nxt in leaving[module_id]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    heapq.heappush(ready, (rank[nxt], nxt))
        if len(order) != len(self.nodes):  # connect() refuses cycles: this is a bug
            raise AssertionError("the patch graph has a cycle")
        self.order = tuple(order)


def _walk_back(came_by: dict[str, Cable], start: str, goal: str) -> list[Cable]:
    path: list[Cable] = []
    module_id = goal
    while module_id != start:
        cable = came_by[module_id]
        path.append(cable)
        module_id = cable.source.module
    return path[::-1]


def _within(exc: InvalidArgument, prefix: str) -> InvalidArgument:
    """The same violations, their fields under `prefix`."""
    return InvalidArgument([replace(v, field=f"{prefix}.{v.field}") for v in exc.violations])
