"""`oxtail-py install-guard`: a real git repository, a real pre-commit hook chained in
front of ours, a real peer process holding the reservation."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of
from oxtail_py.reservation_patterns import normalize
from oxtail_py.reservations import Holder, ReservationBook

PEER = "22222222-2222-4222-8222-222222222222"


def git(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture
def repo(tmp_path: Path, state_root: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    assert git(root, "init", "-q").returncode == 0
    for key, value in (("user.email", "t@example.com"), ("user.name", "t")):
        git(root, "config", key, value)
    (root / "src" / "app.py").write_text("x = 1\n")
    (root / "README").write_text("hi\n")
    git(root, "add", "-A")
    assert git(root, "commit", "-qm", "init").returncode == 0
    return Path(os.path.realpath(root))


@pytest.fixture
def peer() -> Iterator[ProcessIdentity]:
    """A peer's server whose client (its parent, an `sh`) is not above our `git commit`."""
    client = subprocess.Popen(["sh", "-c", f"{sys.executable} -c 'import time; "
                               "time.sleep(120)' & wait"])
    children: list[str] = []
    try:
        deadline = time.monotonic() + 10
        while not children and time.monotonic() < deadline:
            path = Path(f"/proc/{client.pid}/task/{client.pid}/children")
            children = path.read_text().split()
            time.sleep(0.01)
        ident = identity_of(int(children[0]))
        assert ident is not None
        yield ident
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)
        client.kill()
        client.wait()


def _reserve(layout: Layout, repo: Path, server: ProcessIdentity, path: str) -> ReservationBook:
    book = ReservationBook(layout, repo)
    p = normalize(path, repo)
    book.reserve(Holder(server, PEER, "claude", "peer-pane"),
                 [(p.given, p.pattern, p.regex, p.kind)], exclusive=True, ttl_s=600,
                 reason="rewriting app")
    return book


def _install(repo: Path, state_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oxtail_py", "install-guard", "--repo",
                           str(repo)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "AGENTMAIL_HOME": str(state_root)})


def test_the_guard_chains_refuses_then_allows_after_release(
    repo: Path, state_root: Path, layout: Layout, peer: ProcessIdentity
) -> None:
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text(f"#!/bin/sh\necho ran >> {repo}/.git/chained-ran\n")
    (hooks / "pre-commit").chmod(0o755)
    done = _install(repo, state_root)
    assert done.returncode == 0, done.stderr
    assert "pre-commit.oxtail-chained" in done.stdout and "OXTAIL_GUARD=off" in done.stdout
    assert _install(repo, state_root).returncode == 0  # again: still one chained hook

    book = _reserve(layout, repo, peer, "src/")
    (repo / "src" / "app.py").write_text("x = 2\n")
    git(repo, "add", "src/app.py")
    refused = git(repo, "commit", "-qm", "touch app")
    assert refused.returncode != 0
    for part in ("src/app.py", "peer-pane", PEER, "rewriting app", "OXTAIL_GUARD=off"):
        assert part in refused.stderr
    assert (repo / ".git" / "chained-ran").read_text() == "ran\n"  # the old hook ran first

    # a commit of other files goes through
    (repo / "README").write_text("more\n")
    git(repo, "reset", "-q")
    git(repo, "add", "README")
    assert git(repo, "commit", "-qm", "readme").returncode == 0

    book.release(Holder(peer, PEER), None)
    git(repo, "add", "src/app.py")
    allowed = git(repo, "commit", "-qm", "touch app")
    assert allowed.returncode == 0, allowed.stderr


def test_the_bypass_and_the_committers_own_reservation(
    repo: Path, state_root: Path, layout: Layout, peer: ProcessIdentity
) -> None:
    assert _install(repo, state_root).returncode == 0
    _reserve(layout, repo, peer, "src/app.py")
    (repo / "src" / "app.py").write_text("x = 3\n")
    git(repo, "add", "src/app.py")
    bypass = git(repo, "commit", "-qm", "bypass", env={"OXTAIL_GUARD": "off"})
    assert bypass.returncode == 0, bypass.stderr

    # our own reservation: this test process is the holder's client (its parent)
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        me = identity_of(mine.pid)
        assert me is not None
        ReservationBook(layout, repo).release(Holder(peer, PEER), None)
        book = ReservationBook(layout, repo)
        p = normalize("src/app.py", repo)
        book.reserve(Holder(me, "11111111-1111-4111-8111-111111111111"),
                     [(p.given, p.pattern, p.regex, p.kind)], exclusive=True, ttl_s=60,
                     reason="mine")
        (repo / "src" / "app.py").write_text("x = 4\n")
        git(repo, "add", "src/app.py")
        assert git(repo, "commit", "-qm", "own").returncode == 0
    finally:
        mine.kill()
        mine.wait()


def test_a_corrupt_reservation_file_never_blocks_a_commit(
    repo: Path, state_root: Path, layout: Layout, peer: ProcessIdentity
) -> None:
    assert _install(repo, state_root).returncode == 0
    _reserve(layout, repo, peer, "src/app.py")
    layout.reservations(repo).holder(peer).write_text("{corrupt")
    (repo / "src" / "app.py").write_text("x = 5\n")
    git(repo, "add", "src/app.py")
    done = git(repo, "commit", "-qm", "x")
    assert done.returncode == 0, done.stderr


def test_a_guard_whose_interpreter_is_gone_lets_the_commit_go(
    repo: Path, state_root: Path
) -> None:
    assert _install(repo, state_root).returncode == 0
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(hook.read_text().replace(sys.executable, "/nonexistent/python"))
    (repo / "README").write_text("y\n")
    git(repo, "add", "README")
    done = git(repo, "commit", "-qm", "y")
    assert done.returncode == 0, done.stderr
    assert "oxtail guard: not checked" in done.stderr
