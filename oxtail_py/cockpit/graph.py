"""The wait-for graph: who waits on whom (asks in flight, open work), and its cycles.

Nodes are agents by mailbox key (names can repeat: two agents in one tmux session).
Edges come from the asks ledger (asks_ledger: live `waiting` asks), the `await.`
markers of asks the ledger does not know, and obligations (open or blocked delegated
work: the requester waits on the owner). asks_ledger refuses an ask that would close a
cycle of asks; a cycle through open work is still possible, and only shown here.
A cycle is a set of agents each waiting on the next: none of them can move until one
gives up (an ask times out), so the cockpit flags it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

EdgeKind = Literal["ask", "work"]


@dataclass(frozen=True, slots=True)
class Edge:
    waiter: str  # mailbox key of the agent that waits
    target: str  # mailbox key of the agent it waits on ("?" when not found)
    kind: EdgeKind  # ask: an ask_peer in flight; work: an open obligation
    ref: str  # the request id (ask) or obligation id (work)
    since: float  # epoch s
    timeout_s: float | None  # when an ask gives up, as far as known
    detail: str | None = None  # e.g. why open work is blocked


def find_cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """Every elementary cycle once, each as its nodes in order, starting at its least
    node (so a cycle reads the same however it was found). Small graphs: a DFS per node."""
    succ: dict[str, set[str]] = {}
    for e in edges:
        succ.setdefault(e.waiter, set()).add(e.target)
    cycles: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str], on_path: set[str]) -> None:
        for nxt in sorted(succ.get(node, ())):
            if nxt == start:
                cycles.add(tuple(path))
            elif nxt not in on_path and nxt > start:  # each cycle from its least node only
                on_path.add(nxt)
                path.append(nxt)
                walk(start, nxt, path, on_path)
                path.pop()
                on_path.discard(nxt)

    for start in sorted(succ):
        walk(start, start, [start], {start})
    return [list(c) for c in sorted(cycles)]


def in_cycle(cycles: Sequence[Sequence[str]]) -> frozenset[str]:
    return frozenset(node for cycle in cycles for node in cycle)
