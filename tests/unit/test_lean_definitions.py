"""The lean modules the hook's reservation check imports hold the one definition of each
rule (names, liveness, project root, registry entry shape, hook clients): these pin that
the rest of oxtail, built on them, still answers exactly as before."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxtail_py import names
from oxtail_py.hook_output import Client
from oxtail_py.hook_shapes import CLIENTS
from oxtail_py.layout import Layout, project_key
from oxtail_py.proc_start import is_alive
from oxtail_py.procs import ProcessIdentity, identity_of
from oxtail_py.project_root import find_project_root
from oxtail_py.registry import ClientInfo, ParentInfo, Registry, SessionEntry, StateCard, TmuxInfo
from oxtail_py.registry_entry import (
    CLIENT_FIELDS,
    PARENT_FIELDS,
    PARENT_REQUIRED,
    STATE_FIELDS,
    TMUX_FIELDS,
    current_session,
)
from oxtail_py.scope import infer_project_root

SID = "5f0c1d2e-3a4b-4c5d-8e9f-001122334455"


@pytest.mark.parametrize(("value", "ok"), [
    (SID, True), ("a", True), ("A_b-9", True), ("x" * 128, True), ("x" * 129, False),
    ("", False), ("-a", False), ("_a", False), ("a.b", False), ("a/b", False),
    ("pid-1-2.00", False), ("caf\u00e9", False), ("a\n", False), ("\u0661", False),
])
def test_a_session_id_has_one_shape(value: str, ok: bool) -> None:
    assert names.is_session_id(value) is ok


def test_the_project_key_is_the_sha256_it_always_was() -> None:
    for root in ("/", "/srv/proj", "/home/u/caf\u00e9", os.fsdecode(b"/tmp/\xff\xfe")):
        old = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        assert project_key(Path(root)) == names.project_key(root) == old


def test_the_registry_entry_sections_list_the_dataclasses_fields() -> None:
    for cls, fields in ((ClientInfo, CLIENT_FIELDS), (TmuxInfo, TMUX_FIELDS),
                        (StateCard, STATE_FIELDS), (ParentInfo, PARENT_FIELDS)):
        assert {f.name for f in dataclasses.fields(cls)} == set(fields), cls
    required = {f.name for f in dataclasses.fields(ParentInfo)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert required == set(PARENT_REQUIRED)


def test_the_hook_clients_are_the_enum_values() -> None:
    assert tuple(c.value for c in Client) == CLIENTS


def _variants(good: dict[str, Any]) -> list[dict[str, Any]]:
    """Well-formed and malformed entries, one field changed at a time."""
    changes: list[tuple[str, str | None, Any]] = [
        ("client", "session_id", "../x"), ("client", "session_id", 7),
        ("client", "claimed", "yes"), ("client", "previous_session_ids", ["ok", "../no"]),
        ("client", "previous_session_ids", [SID] * 17), ("client", "bogus", 1),
        ("client", "cwd", "x" * 5000), ("tmux", "session", 3), ("tmux", "window", "1"),
        ("state", "role", "NOT A ROLE"), ("state", "role", "reviewer"),
        ("state", "purpose", "p" * 801), ("state", "purpose", 3), ("parent", None, "x"),
        ("parent", None, {"by": "agent"}), ("parent", None, {"spawn_id": "a" * 32,
                                                           "by": "agent", "depth": 0}),
        ("parent", None, {"spawn_id": "a" * 32, "by": "person"}), ("capabilities", None, "x"),
        ("capabilities", None, list(range(33))), ("server_pid", None, True),
        ("server_start", None, "soon"), ("client", None, []), ("client", None, "x"),
    ]
    out = [good]
    for section, key, value in changes:
        entry = json.loads(json.dumps(good))
        if key is None:
            entry[section] = value
        else:
            entry.setdefault(section, {})[key] = value
        out.append(entry)
    return out


def test_the_hook_reads_a_registry_entry_exactly_when_the_registry_does(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path / "am")
    layout.sessions_dir.mkdir(parents=True, mode=0o700)
    me = identity_of(os.getpid())
    assert me is not None
    good = SessionEntry(me.pid, me.start, client=ClientInfo(session_id=SID)).to_dict()
    accepted = 0
    for entry in _variants(good):
        layout.session_file(me.pid).write_text(json.dumps(entry))
        registry = Registry(layout).get(me)
        lean = current_session(str(layout.session_file(me.pid)), me.start)
        assert (registry is None) == (lean is None), entry
        if registry is not None and lean is not None:
            accepted += 1
            assert (lean.session_id, lean.previous_session_ids, lean.tmux_session) == (
                registry.client.session_id, tuple(registry.client.previous_session_ids),
                registry.tmux.session)
    # the good entry, a known role, a person's spawn, an empty client section (no session)
    assert accepted == 4


def test_liveness_is_one_rule_for_procs_and_the_hook() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    live = identity_of(proc.pid)
    assert live is not None
    cases = [live, ProcessIdentity(live.pid, "1.00")]
    proc.wait(5)  # reaped: gone
    me = identity_of(os.getpid())
    assert me is not None
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    zombie_id = identity_of(zombie.pid)
    assert zombie_id is not None
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    try:
        cases += [me, ProcessIdentity(me.pid, "1.00"), zombie_id, ProcessIdentity(0, "1.00")]
        answers = [(c.is_alive(), is_alive(c.pid, c.start)) for c in cases]
    finally:
        zombie.wait()
    assert all(a == b for a, b in answers), answers
    assert [a for a, _ in answers] == [False, False, True, False, False, False]


def test_the_project_root_rule(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "a" / "b").mkdir(parents=True)
    (repo / ".git").mkdir()
    worktree = tmp_path / "wt"
    (worktree / "src").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    link = tmp_path / "link"
    link.symlink_to(repo / "a")
    bare = tmp_path / "bare" / "x"
    bare.mkdir(parents=True)
    for start, expected in ((repo / "a" / "b", repo), (worktree / "src", worktree),
                            (link, repo), (repo, repo)):
        assert find_project_root(start) == str(expected)
        assert infer_project_root(start) == (expected, True)
    # no .git above (tmp_path itself is not in a repository here): the realpath itself
    if find_project_root(tmp_path) == os.path.realpath(tmp_path):
        assert find_project_root(bare) == os.path.realpath(bare)
