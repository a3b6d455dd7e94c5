"""Reservation patterns as small automata: match a path, and decide whether two overlap.

A reservation pattern is a gitwildmatch glob, and `pathspec` (reservation_patterns.py)
turns it into the regular expression that defines its meaning; we store that regex
with the reservation. This module never imports pathspec (the hook must start fast)
and never runs a stored regex with `re` (a forged file could hold one that backtracks
for ever): it parses the regex with the standard library's own parser, accepts only
the constructs pathspec emits, and runs it as an NFA, in time linear in the path.

Semantics are pathspec's: a pattern matches `path` when its regex matches a prefix of
it (`re.match`), which is how `src/` covers everything under src.

Two patterns conflict when some path matches both: `overlap` searches the product of
the two automata over a finite alphabet that stands for every character (one per class
of characters the patterns cannot tell apart) and returns the shortest such path.
"""

from __future__ import annotations

import functools
from collections import deque

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, Final

# The regex parser of the standard library (`re` itself uses it). Untyped, private:
# pinned by tests/unit/test_globmatch.py, which compares with `re` on many paths.
# Lean on purpose (no dataclasses, typing or importlib at run time): the hook's
# reservation check runs this module in a fresh interpreter on every edit tool call,
# and `re` is loaded there anyway (json imports it).
_sre: Any = __import__("re._parser", fromlist=["_parser"])

MAX_REGEX_CHARS: Final = 4096
MAX_STATES: Final = 4096
# Pairs of state sets `overlap` may visit. pathspec's patterns need a few hundred; a forged
# one past this is reported as overlapping (refusing a grant is the safe side).
MAX_PAIRS: Final = 20_000
UNDECIDED: Final = "(too complex to decide: treated as overlapping)"
_MAX_BOUNDED_REPEAT: Final = 32
_SLASH: Final = ord("/")


class PatternError(ValueError):
    """A regex outside what a reservation pattern may be (forged or corrupt)."""


class _CharSet:
    """One character position: ranges (inclusive), possibly negated. Never changed."""

    __slots__ = ("negated", "newline_too", "ranges")

    def __init__(self, ranges: tuple[tuple[int, int], ...], negated: bool = False,
                 newline_too: bool = True) -> None:
        self.ranges = ranges
        self.negated = negated
        self.newline_too = newline_too  # `.` does not match a newline (no DOTALL), `[^/]` does

    def __contains__(self, c: int) -> bool:
        inside = any(lo <= c <= hi for lo, hi in self.ranges)
        if self.negated:
            inside = not inside
        return inside and (self.newline_too or c != 10)


_ANY: Final = _CharSet((), negated=True, newline_too=False)


class Nfa:
    """States 0..n-1; `start`; one `accept` state. Edges: char sets, epsilons, and
    end-only epsilons (`$`), taken only once the whole path is read."""

    __slots__ = ("accept", "chars", "end_eps", "eps", "prefix", "start")

    def __init__(self) -> None:
        self.chars: list[list[tuple[_CharSet, int]]] = []
        self.eps: list[list[int]] = []
        self.end_eps: list[list[int]] = []
        self.start = 0
        self.accept = 0
        self.prefix = ""  # every path it matches starts with this (the regex's literal head)

    def new(self) -> int:
        if len(self.chars) >= MAX_STATES:
            raise PatternError("pattern too complex")
        self.chars.append([])
        self.eps.append([])
        self.end_eps.append([])
        return len(self.chars) - 1

    def closure(self, states: frozenset[int], *, at_end: bool = False) -> frozenset[int]:
        seen = set(states)
        todo = list(states)
        while todo:
            s = todo.pop()
            for t in self.eps[s] + (self.end_eps[s] if at_end else []):
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)

    def step(self, states: frozenset[int], c: int) -> frozenset[int]:
        return self.closure(frozenset(t for s in states for cs, t in self.chars[s] if c in cs))

    def begin(self) -> frozenset[int]:
        return self.closure(frozenset({self.start}))

    def accepts_now(self, states: frozenset[int]) -> bool:
        return self.accept in states or self.accept in self.closure(states, at_end=True)

    def matches(self, path: str) -> bool:
        """True when a prefix of `path` matches (re.match), in O(len(path) * states)."""
        states = self.begin()
        for ch in path:
            if self.accept in states:
                return True
            states = self.step(states, ord(ch))
            if not states:
                return False
        return self.accepts_now(states)

    def alphabet(self) -> set[int]:
        """Class boundaries of every char set: each class starts at one of these."""
        points = {1, 10, 11, _SLASH, _SLASH + 1}
        for edges in self.chars:
            for cs, _ in edges:
                for lo, hi in cs.ranges:
                    points.update((lo, hi + 1))
        return {p for p in points if 0 < p <= 0x10FFFF}


@functools.lru_cache(maxsize=1024)
def from_regex(regex: str) -> Nfa:
    """The NFA of a regex pathspec produced. Anything else is a PatternError. Cached: a
    server checks the same reservations again and again (callers never change an Nfa)."""
    if len(regex) > MAX_REGEX_CHARS:
        raise PatternError(f"regex over {MAX_REGEX_CHARS} characters")
    try:
        parsed = list(_sre.parse(regex))
    except Exception as exc:  # re.error and anything the private parser raises
        raise PatternError(f"not a regex: {exc}") from exc
    nfa = Nfa()
    nfa.start = nfa.new()
    nfa.accept = _build(nfa, parsed, nfa.start)
    head = []
    for op, arg in parsed:
        if str(op) == "AT" and str(arg) in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
            continue
        if str(op) != "LITERAL":
            break
        head.append(chr(arg))
    nfa.prefix = "".join(head)
    return nfa


def _build(nfa: Nfa, items: list[Any], state: int) -> int:
    for op, arg in items:
        state = _build_one(nfa, str(op), arg, state)
    return state


def _build_one(nfa: Nfa, op: str, arg: Any, state: int) -> int:
    if op in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
        nxt = nfa.new()
        nfa.chars[state].append((_charset(op, arg), nxt))
        return nxt
    if op == "AT":
        where = str(arg)
        if where in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
            return state  # every match starts at the path's beginning
        if where in ("AT_END", "AT_END_STRING"):
            nxt = nfa.new()
            nfa.end_eps[state].append(nxt)
            return nxt
        raise PatternError(f"unsupported anchor {where}")
    if op == "SUBPATTERN":
        return _build(nfa, list(arg[-1]), state)
    if op == "BRANCH":
        end = nfa.new()
        for alternative in arg[1]:
            begin = nfa.new()
            nfa.eps[state].append(begin)
            nfa.eps[_build(nfa, list(alternative), begin)].append(end)
        return end
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, body = arg
        unbounded = high == _sre.MAXREPEAT
        if low > _MAX_BOUNDED_REPEAT or (not unbounded and high > _MAX_BOUNDED_REPEAT):
            raise PatternError("repeat count too large")
        for _ in range(low):
            state = _build(nfa, list(body), state)
        if unbounded:
            loop = nfa.new()
            nfa.eps[state].append(loop)
            nfa.eps[_build(nfa, list(body), loop)].append(loop)
            return loop
        end = nfa.new()
        nfa.eps[state].append(end)
        for _ in range(high - low):
            state = _build(nfa, list(body), state)
            nfa.eps[state].append(end)
        return end
    raise PatternError(f"unsupported regex construct {op}")


def _charset(op: str, arg: Any) -> _CharSet:
    if op == "LITERAL":
        return _CharSet(((arg, arg),))
    if op == "NOT_LITERAL":
        return _CharSet(((arg, arg),), negated=True)
    if op == "ANY":
        return _ANY
    ranges: list[tuple[int, int]] = []
    negated = False
    for item_op, item in arg:
        kind = str(item_op)
        if kind == "NEGATE":
            negated = True
        elif kind == "LITERAL":
            ranges.append((item, item))
        elif kind == "RANGE":
            ranges.append((item[0], item[1]))
        else:
            raise PatternError(f"unsupported character class item {kind}")
    return _CharSet(tuple(ranges), negated=negated)


def overlap(a: Nfa, b: Nfa) -> str | None:
    """The shortest path both patterns match, or None when no path can.

    Breadth-first over pairs of state sets (each NFA determinised on the fly); a side
    that has matched already matches every longer path (prefix semantics), so it is
    kept as `None`, "matched". Characters are taken one per class of the joint
    alphabet: within a class both automata behave the same."""
    if not (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)):
        return None  # `src/…` and `docs/…`: no path starts with both (most pairs end here)
    reps = sorted(a.alphabet() | b.alphabet())
    Side = frozenset[int] | None
    first: tuple[Side, Side] = (a.begin(), b.begin())
    parents: dict[tuple[Side, Side], tuple[tuple[Side, Side], str] | None] = {first: None}
    queue = deque([first])
    while queue:
        pair = queue.popleft()
        sa, sb = pair
        done_a = sa is None or a.accepts_now(sa)
        done_b = sb is None or b.accepts_now(sb)
        if done_a and done_b:
            return _path(parents, pair)
        for c in reps:
            na = None if sa is None or a.accept in sa else a.step(sa, c)
            nb = None if sb is None or b.accept in sb else b.step(sb, c)
            if (na is not None and not na) or (nb is not None and not nb):
                continue  # one side can no longer match
            nxt = (na, nb)
            if nxt not in parents:
                if len(parents) >= MAX_PAIRS:
                    return UNDECIDED
                parents[nxt] = (pair, chr(c))
                queue.append(nxt)
    return None


def _path(parents: dict[Any, Any], pair: Any) -> str:
    chars: list[str] = []
    while parents[pair] is not None:
        pair, ch = parents[pair]
        chars.append(ch)
    return "".join(reversed(chars))
