"""The wait-for graph's cycles: each found once, from its least node, any length."""

from __future__ import annotations

from oxtail_py.cockpit.graph import Edge, find_cycles, in_cycle


def edge(a: str, b: str, kind: str = "ask") -> Edge:
    return Edge(a, b, kind, f"{a}{b}", 0.0, None)  # type: ignore[arg-type]


def test_no_cycle_in_a_chain_or_a_fan() -> None:
    assert find_cycles([edge("a", "b"), edge("b", "c"), edge("a", "c")]) == []


def test_two_and_three_cycles_each_once_from_the_least_node() -> None:
    edges = [edge("b", "a"), edge("a", "b", "work"), edge("c", "d"), edge("d", "e"),
             edge("e", "c"), edge("e", "f")]
    assert find_cycles(edges) == [["a", "b"], ["c", "d", "e"]]
    assert in_cycle(find_cycles(edges)) == frozenset("abcde")


def test_overlapping_cycles_are_all_listed() -> None:
    edges = [edge("a", "b"), edge("b", "a"), edge("b", "c"), edge("c", "a")]
    assert find_cycles(edges) == [["a", "b"], ["a", "b", "c"]]


def test_a_self_loop_is_a_cycle() -> None:
    assert find_cycles([edge("a", "a")]) == [["a"]]
