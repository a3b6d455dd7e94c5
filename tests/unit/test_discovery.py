"""discovery.list_project on real processes and a real (private) tmux server: hostile
registry files are rejected without hanging or crashing the listing, a pane is
attributed only through the live process tree, and unread counts come from real boxes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_py.discovery import Listing, list_project
from oxtail_py.fsio import ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message
from oxtail_py.procs import identity_of, self_identity
from oxtail_py.registry import ClientInfo, Registry, SessionEntry, TmuxInfo

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or shutil.which("tmux") is None, reason="needs /proc and tmux"
)

SID_PEER = "cccccccc-0000-4000-8000-000000000001"
SID_FORGER = "dddddddd-0000-4000-8000-000000000002"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    (path / ".git").mkdir(parents=True)
    return path.resolve()


@pytest.fixture
def tmux_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Short: a unix socket path is limited to ~100 bytes.
    socket = Path(f"/tmp/oxd-{os.getpid()}-{threading.get_ident() % 10000}")
    monkeypatch.setenv("OXTAIL_TMUX_SOCKET", str(socket))
    yield socket
    subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)
    socket.unlink(missing_ok=True)


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def _register(layout: Layout, pid: int, sid: str, cwd: Path, **tmux: str) -> SessionEntry:
    ident = identity_of(pid)
    assert ident is not None
    entry = SessionEntry(
        ident.pid,
        ident.start,
        client=ClientInfo(type="claude", session_id=sid, cwd=str(cwd)),
        tmux=TmuxInfo(**tmux),
    )
    Registry(layout).write(entry)
    return entry


def _list_within(layout: Layout, project: Path, seconds: float = 15.0) -> Listing:
    """list_project in a thread: a hang (a FIFO opened for blocking read) fails the test
    instead of stalling the run."""
    result: list[Listing | BaseException] = []

    def work() -> None:
        try:
            result.append(list_project(layout, project, True, self_identity()))
        except BaseException as exc:  # handed to the test thread below
            result.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"list_project did not return within {seconds}s"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_hostile_registry_files_are_rejected_and_the_rest_is_listed(
    layout: Layout, project: Path, tmux_socket: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.append(subprocess.Popen(["sleep", "60"]))
    peer = _register(layout, sleepers[0].pid, SID_PEER, project)
    sessions = ensure_tree(layout.root, layout.sessions_dir)
    os.mkfifo(sessions / "x.json", 0o600)  # would block a plain open() for ever
    (sessions / "7.json").write_text('{"server_pid": 1e400, "server_start": "1.00"}')
    (sessions / "8.json").write_text('{"server_pid": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (sessions / "9.json").write_text('["not", "an", "object"]')
    (sessions / "10.json").mkdir()
    (sessions / "11.json").write_text(json.dumps({"server_pid": 2**40, "server_start": "1.00"}))
    (sessions / "12.json").write_text(json.dumps({"server_pid": True, "server_start": "1.00"}))
    (sessions / "13.json").write_bytes(b"\xff\xfe{")

    listing = _list_within(layout, project)

    agents = [r for r in listing.rows if r.kind == "agent"]
    assert [(r.client_session_id, r.server_pid) for r in agents] == [(SID_PEER, peer.server_pid)]
    # Rejected, not deleted: the files are evidence, and none of them is ours to remove.
    assert (sessions / "x.json").exists() and (sessions / "7.json").exists()


def test_pane_comes_only_from_the_live_process_tree(
    layout: Layout, project: Path, tmux_socket: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    subprocess.run(
        [
            "tmux",
            "-S",
            str(tmux_socket),
            "new-session",
            "-d",
            "-s",
            "peer",
            "-c",
            str(project),
            "sleep 60",
        ],
        check=True,
    )
    shown = subprocess.run(
        ["tmux", "-S", str(tmux_socket), "list-panes", "-a", "-F", "#{pane_id} #{pane_pid}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    pane_id, pane_pid = shown[0], int(shown[1])
    # The pane's own process is a registered server: its pane is proven by the tree.
    _register(layout, pane_pid, SID_PEER, project)
    # A forger outside tmux names that pane in its entry: the field is never believed.
    sleepers.append(subprocess.Popen(["sleep", "60"]))
    _register(layout, sleepers[0].pid, SID_FORGER, project, pane=pane_id, session="peer")

    listing = _list_within(layout, project)

    by_sid = {r.client_session_id: r for r in listing.rows if r.kind == "agent"}
    assert by_sid[SID_PEER].tmux_pane == pane_id and by_sid[SID_PEER].name == "peer"
    assert by_sid[SID_FORGER].tmux_pane is None and by_sid[SID_FORGER].name == SID_FORGER
    assert [r for r in listing.rows if r.kind == "pane"] == []  # the pane is the peer's
    assert listing.tmux_available


def test_unread_counts_read_existing_boxes_only(
    layout: Layout, project: Path, tmux_socket: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    sleepers.extend(subprocess.Popen(["sleep", "60"]) for _ in range(2))
    _register(layout, sleepers[0].pid, SID_PEER, project)
    _register(layout, sleepers[1].pid, SID_FORGER, project)
    box = Mailbox.open(layout, SID_PEER)
    for n in range(3):
        box.enqueue(Message.create(f"m{n}", from_session_id=None))

    listing = _list_within(layout, project)
    unread = {r.client_session_id: r.unread for r in listing.rows if r.kind == "agent"}
    assert unread == {SID_PEER: 3, SID_FORGER: 0}
    assert not layout.mailbox(SID_FORGER).directory.exists()  # a listing creates nothing

    quiet = list_project(layout, project, True, self_identity(), count_unread=False)
    assert {r.client_session_id: r.unread for r in quiet.rows} == {SID_PEER: 0, SID_FORGER: 0}


def test_agents_of_other_projects_are_kept_apart(
    layout: Layout,
    project: Path,
    tmp_path: Path,
    tmux_socket: Path,
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    sleepers.extend(subprocess.Popen(["sleep", "60"]) for _ in range(2))
    _register(layout, sleepers[0].pid, SID_PEER, project / "sub")
    _register(layout, sleepers[1].pid, SID_FORGER, other)

    listing = _list_within(layout, project)
    assert [r.client_session_id for r in listing.rows] == [SID_PEER]
    assert [r.client_session_id for r in listing.outside] == [SID_FORGER]
    assert listing.tmux_available is False  # no tmux server on this socket
