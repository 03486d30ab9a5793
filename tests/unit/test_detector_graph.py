"""The patch graph: the evaluation order is always topological, and a refused change (a
cycle, a type mismatch, a taken input) leaves the graph exactly as it was."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.core.detector.engine.graph import Cable, Endpoint, Graph
from trademesh.core.detector.engine.module import Category, ModuleSpec, Port
from trademesh.core.detector.engine.values import PortType
from trademesh.core.platform.errors import InvalidArgument, NotFound

NODE = ModuleSpec(
    "node",
    Category.MATH,
    "three number inputs, two outputs",
    inputs=tuple(Port(name, PortType.NUMBER, optional=True) for name in ("a", "b", "c")),
    outputs=(Port("x", PortType.NUMBER), Port("y", PortType.NUMBER)),
)
FLAG = ModuleSpec(
    "flag",
    Category.LOGIC,
    "a boolean",
    inputs=(Port("a", PortType.BOOLEAN),),
    outputs=(Port("out", PortType.BOOLEAN),),
)
IDS = [f"m{i}" for i in range(6)]


def snapshot(graph: Graph) -> tuple[object, ...]:
    return (tuple(graph.nodes), dict(graph.cables), graph.order)


def assert_topological(graph: Graph) -> None:
    assert sorted(graph.order) == sorted(graph.nodes)
    position = {module_id: i for i, module_id in enumerate(graph.order)}
    for cable in graph.cables.values():
        assert position[cable.source.module] < position[cable.target.module], cable


edits = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(IDS)),
        st.tuples(st.just("remove"), st.sampled_from(IDS)),
        st.tuples(
            st.just("connect"),
            st.sampled_from(IDS),
            st.sampled_from("xy"),
            st.sampled_from(IDS),
            st.sampled_from("abc"),
        ),
        st.tuples(st.just("disconnect"), st.sampled_from(IDS), st.sampled_from("abc")),
    ),
    max_size=60,
)


def apply(graph: Graph, edit: tuple[str, ...]) -> None:
    kind = edit[0]
    if kind == "add":
        graph.add_module(edit[1], NODE, {})
    elif kind == "remove":
        graph.remove_module(edit[1])
    elif kind == "connect":
        graph.connect(Cable(Endpoint(edit[1], edit[2]), Endpoint(edit[3], edit[4])))
    else:
        cable = graph.cables.get(Endpoint(edit[1], edit[2]))
        if cable is None:
            raise NotFound("none")
        graph.disconnect(cable)


@settings(max_examples=300, deadline=None)
@given(edits)
def test_random_edits_keep_a_topological_order_and_refusals_change_nothing(
    sequence: list[tuple[str, ...]],
) -> None:
    graph = Graph()
    for edit in sequence:
        before = snapshot(graph)
        try:
            apply(graph, edit)
        except (InvalidArgument, NotFound):
            assert snapshot(graph) == before
        assert_topological(graph)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6), st.data())
def test_a_cable_closing_a_cycle_is_refused_naming_its_path(length: int, data: st.DataObject) -> None:
    graph = Graph()
    ids = IDS[:length]
    for module_id in ids:
        graph.add_module(module_id, NODE, {})
    for source, target in itertools.pairwise(ids):
        graph.connect(Cable(Endpoint(source, "x"), Endpoint(target, "a")))
    before = snapshot(graph)
    start = data.draw(st.integers(1, length - 1))
    closing = Cable(Endpoint(ids[start], "y"), Endpoint(ids[0], "b"))
    with pytest.raises(InvalidArgument, match="would close a cycle") as refused:
        graph.connect(closing)
    assert snapshot(graph) == before
    path = " -> ".join([str(closing), *(f"{a}.x -> {b}.a" for a, b in itertools.pairwise(ids[: start + 1]))])
    assert path in str(refused.value)


def test_a_cable_into_its_own_module_is_a_cycle() -> None:
    graph = Graph()
    graph.add_module("a", NODE, {})
    with pytest.raises(InvalidArgument, match=r"cycle: a\.x -> a\.a"):
        graph.connect(Cable.parse("a.x -> a.a"))
    assert graph.cables == {}


def test_ports_of_different_types_are_refused_naming_both() -> None:
    graph = Graph()
    graph.add_module("n", NODE, {})
    graph.add_module("f", FLAG, {})
    with pytest.raises(InvalidArgument, match=r"n\.x is number but f\.a is boolean"):
        graph.connect(Cable.parse("n.x -> f.a"))


def test_an_input_takes_one_cable() -> None:
    graph = Graph()
    for module_id in ("a", "b", "c"):
        graph.add_module(module_id, NODE, {})
    graph.connect(Cable.parse("a.x -> c.a"))
    with pytest.raises(InvalidArgument, match=r"c\.a is connected already \(a\.x -> c\.a\)"):
        graph.connect(Cable.parse("b.x -> c.a"))


def test_unknown_modules_and_ports_are_named() -> None:
    graph = Graph()
    graph.add_module("a", NODE, {})
    with pytest.raises(InvalidArgument, match="no module 'ghost'"):
        graph.connect(Cable.parse("a.x -> ghost.a"))
    with pytest.raises(InvalidArgument, match="has no output 'nope'"):
        graph.connect(Cable.parse("a.nope -> a.b"))
    with pytest.raises(NotFound, match="ghost"):
        graph.remove_module("ghost")
    with pytest.raises(InvalidArgument, match=r"is not 'module\.output -> module\.input'"):
        Cable.parse("a.x b.a")


def test_the_order_is_recomputed_after_every_change() -> None:
    graph = Graph()
    for module_id in ("c", "b", "a"):
        graph.add_module(module_id, NODE, {})
    assert list(graph.order) == ["c", "b", "a"]
    graph.connect(Cable.parse("a.x -> c.a"))
    assert list(graph.order) == ["b", "a", "c"]
    graph.disconnect(Cable.parse("a.x -> c.a"))
    assert list(graph.order) == ["c", "b", "a"]
    graph.remove_module("b")
    assert list(graph.order) == ["c", "a"]
