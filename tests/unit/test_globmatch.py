"""Reservation patterns as automata: the same answers as pathspec + `re`, overlap defined
as "some path matches both" (with the path), and forged regexes refused, never run."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from oxtail_py.globmatch import UNDECIDED, PatternError, from_regex, overlap

PATTERNS = ["/src/app.py", "/src/", "*.py", "/src/**/x", "**foo", "/a/**b", "/src/*.py", "x/",
            "[!a]b", "[]a]", "**", "*", "/src/**", "/a/b/c.py", "[a-c]?.md", "/docs/**/*.md",
            "\\[x]", "a*b*c", "**/tests/**", "/src/app.p[y]"]


def _regex(pattern: str) -> str:
    regex, include = GitIgnoreSpecPattern.pattern_to_regex(pattern)
    assert regex is not None and include
    return str(regex)


def _paths() -> set[str]:
    rng = random.Random(13)
    alphabet = "abcx/.py[]mdsrcfotep"  # no newline: `re`'s `$` also matches before one
    found = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
             for _ in range(4000)}
    return found | {"src/app.py", "src/a.py", "x/y", "a/b/c.py", "docs/a/b.md", "tests/x",
                    "q/tests/y", "foo", "a/zzb", "src/q/x", "src/app.py/z"}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_nfa_matches_exactly_what_pathspecs_regex_matches(pattern: str) -> None:
    regex = _regex(pattern)
    nfa, compiled = from_regex(regex), re.compile(regex)
    wrong = [p for p in _paths() if bool(compiled.match(p)) != nfa.matches(p)]
    assert wrong == []


def test_overlap_finds_a_path_both_match_whenever_one_exists() -> None:
    paths = _paths()
    for a, b in itertools.combinations(PATTERNS, 2):
        ra, rb = re.compile(_regex(a)), re.compile(_regex(b))
        witness = overlap(from_regex(ra.pattern), from_regex(rb.pattern))
        if witness is not None:
            assert ra.match(witness) and rb.match(witness), (a, b, witness)
        elif any(ra.match(p) and rb.match(p) for p in paths):
            pytest.fail(f"{a} and {b} share a path, overlap found none")


@pytest.mark.parametrize(("a", "b", "example"), [
    # glob versus file
    ("/src/*.py", "/src/app.py", "src/app.py"),
    ("**/*.py", "/src/app.py", "src/app.py"),
    # directory versus file under it
    ("/src/", "/src/deep/app.py", "src/deep/app.py"),
    # glob versus glob
    ("/src/**/*.py", "/src/api/*", "src/api/.py"),
    ("/docs/*.md", "*.md", "docs/.md"),
])
def test_overlapping_patterns_conflict_with_the_shortest_shared_path(
    a: str, b: str, example: str
) -> None:
    assert overlap(from_regex(_regex(a)), from_regex(_regex(b))) == example


@pytest.mark.parametrize(("a", "b"), [
    ("/src/*.py", "/src/app.js"),  # glob versus file
    ("/src/*.py", "/docs/**"),  # disjoint directories
    ("/src/a/*.py", "/src/b/*.py"),  # glob versus glob, siblings
    ("/src/app.py", "/src/app.pyc"),  # a file is not a prefix of another name
    ("/src/[a-m]*.py", "/src/[n-z]*.py"),  # disjoint character classes
])
def test_disjoint_patterns_do_not_conflict(a: str, b: str) -> None:
    assert overlap(from_regex(_regex(a)), from_regex(_regex(b))) is None


def test_a_pattern_matches_everything_under_a_directory_of_its_name() -> None:
    """gitignore semantics: `*.py` also covers `x.py/inner` (a directory so named), so
    `*.py` and `*.md` overlap on `.md/.py`: that is the definition, a common path."""
    assert overlap(from_regex(_regex("*.py")), from_regex(_regex("*.md"))) == ".md/.py"


@pytest.mark.parametrize("forged", [
    r"(a+)+$",  # fine as an NFA: linear, never backtracks
    r"^src/app\.py(?:(?P<ps_d>/)|$)",
])
def test_any_accepted_regex_runs_in_linear_time(forged: str) -> None:
    nfa = from_regex(forged)
    assert nfa.matches("a" * 50_000 + "!") in (True, False)


@pytest.mark.parametrize("bad", [r"\bword", r"(?=x)y", r"a{1000}", r"(a)\1", "[", "x" * 5000])
def test_regexes_outside_the_supported_set_are_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        from_regex(bad)


def test_a_pattern_too_complex_to_decide_counts_as_overlapping() -> None:
    """Two forged regexes with no common path whose product explodes (2**16 subsets on
    each side): the search stops at MAX_PAIRS and reports an overlap, the safe side."""
    a = from_regex("(?:a|b)*a(?:a|b){15}c")
    b = from_regex("(?:a|b)*b(?:a|b){15}d")
    assert overlap(a, b) == UNDECIDED
    assert overlap(from_regex("(?:a|b)*c"), from_regex("(?:a|b)*d")) is None  # small: exact
