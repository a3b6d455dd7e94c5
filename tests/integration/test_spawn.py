"""Spawning's checks, limits and lineage, against real processes and a real tmux server.

The real clients' side (a spawn that starts Claude Code / Codex, asks it, stops it) is in
tests/e2e/test_spawn_real.py; here every refusal that happens before or instead of a
launch, the lineage proof from the kernel's copy of the environment, and a client that
fails at start, reported in its own words.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import psutil
import pytest

from oxtail_py import tmux
from oxtail_py.errors import OxtailError
from oxtail_py.layout import Layout
from oxtail_py.messages import MAX_BODY_BYTES
from oxtail_py.procs import ProcessIdentity, identity_of, self_identity
from oxtail_py.registry import Registry, SessionEntry
from oxtail_py.settings import Settings
from oxtail_py.spawn.lineage import SPAWN_DEPTH_VAR, SPAWN_ID_VAR, depth_of, marks_above
from oxtail_py.spawn.preflight import codex_daemon_problem
from oxtail_py.spawn.records import (
    ParentRef,
    SpawnRecord,
    live_records,
    new_spawn_id,
    read_record,
    write_record,
)
from oxtail_py.spawn.spawner import Caller, Spawner
from tests.integration.harness import (
    PrivateTmux,
    error_code,
    launch_in_pane,
    ok,
    result_data,
    wait_until,
)


@pytest.fixture
def settings(
    tmp_path: Path, tmux_server: PrivateTmux, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    env = {"HOME": str(tmp_path / "home"), "AGENTMAIL_HOME": str(tmp_path / "agentmail"),
           "OXTAIL_TMUX_SOCKET": str(tmux_server.socket)}
    settings = Settings.from_env(env)
    # Restored after the test (monkeypatch): a configured target left behind would make
    # every later in-process tmux call of the session ignore its own OXTAIL_TMUX_SOCKET.
    monkeypatch.setattr(tmux._Target, "configured", tmux._Target.configured)
    monkeypatch.setattr(tmux._Target, "socket", tmux._Target.socket)
    tmux.configure(settings)
    yield settings


@pytest.fixture
def with_claude(tmp_path: Path) -> str:
    """A PATH holding a `claude` (it only waits): the checks after the binary's run."""
    return fake_client(tmp_path / "claude-bin", "claude", "exec sleep 60")


def caller(project: Path, *, pid: int | None = None, path: str | None = None) -> Caller:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return Caller(by="person", pid=pid or os.getpid(), cwd=str(project), name="person",
                  session_id=None, tmux_session=None, env=env)


def refusal(spawner: Spawner, who: Caller, client: str = "claude", prompt: str = "hi",
            **kwargs: str) -> OxtailError:
    with pytest.raises(OxtailError) as raised:
        spawner.spawn(who, client, prompt, **kwargs)
    return raised.value


def fake_client(directory: Path, name: str, script: str) -> str:
    """An executable named like a client on a PATH of its own (a real process; only what
    it does is ours)."""
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / name
    exe.write_text(f"#!/bin/sh\n{script}\n")
    exe.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"


def test_a_missing_client_binary_is_named_with_doctors_fix(
    settings: Settings, project: Path, tmp_path: Path
) -> None:
    err = refusal(Spawner(Layout(settings.root), settings), caller(project, path=str(tmp_path)),
                  "codex")
    assert err.code == "client-not-found"
    assert "codex binary is not on PATH" in str(err) and "doctor" in str(err)


def test_an_unknown_client_is_refused(settings: Settings, project: Path) -> None:
    err = refusal(Spawner(Layout(settings.root), settings), caller(project), "gemini")
    assert err.code == "unknown-client" and "'claude' or 'codex'" in str(err)


def test_a_prompt_over_the_body_limit_is_refused(settings: Settings, project: Path) -> None:
    err = refusal(Spawner(Layout(settings.root), settings), caller(project),
                  prompt="x" * (MAX_BODY_BYTES + 1))
    assert err.code == "body-too-large"


def test_a_project_outside_the_callers_own_is_refused(
    settings: Settings, project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)
    err = refusal(Spawner(Layout(settings.root), settings), caller(project),
                  project_root=str(other))
    assert err.code == "cross-project"


def test_missing_tmux_is_refused(
    settings: Settings, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # this process finds no tmux
    err = refusal(Spawner(Layout(settings.root), settings), caller(project))
    assert err.code == "tmux-unavailable" and "Install tmux" in str(err)


def test_a_name_in_use_or_malformed_is_refused(
    settings: Settings, project: Path, tmux_server: PrivateTmux, with_claude: str
) -> None:
    tmux_server.new_session("busy", project, "sleep 60")
    spawner = Spawner(Layout(settings.root), settings)
    who = caller(project, path=with_claude)
    err = refusal(spawner, who, name="busy")
    assert err.code == "name-taken" and "choose another name" in str(err)
    assert refusal(spawner, who, name="no spaces").code == "bad-name"
    assert refusal(spawner, who, name="-dash").code == "bad-name"


def test_depth_comes_from_the_ancestors_environment_and_a_descendant_cannot_lower_it(
    settings: Settings, project: Path, with_claude: str
) -> None:
    spawn_id = new_spawn_id()
    env = {**os.environ, SPAWN_ID_VAR: spawn_id, SPAWN_DEPTH_VAR: "2"}
    # A level-2 helper whose shell runs a command claiming depth 0 (a model could).
    outer = subprocess.Popen(
        ["sh", "-c", f"env {SPAWN_DEPTH_VAR}=0 sleep 30; :"], env=env,
    )  # fmt: skip
    try:
        inner = wait_until(lambda: _child_of(outer.pid), what="the inner command")
        assert [m.depth for m in marks_above(inner)] == [0, 2]
        assert depth_of(inner) == 2
        who = caller(project, pid=inner, path=with_claude)
        err = refusal(Spawner(Layout(settings.root), settings), who)
        assert err.code == "spawn-depth-limit" and "level-3" in str(err)
        assert depth_of(os.getpid()) == 0
    finally:
        outer.kill()
        outer.wait()


def test_a_depth_in_non_ascii_digits_is_no_mark_not_a_crash() -> None:
    """A process (any, ours or not) whose environment says depth "²" (str.isdigit() takes
    it, int() does not) carries no spawn mark."""
    env = {**os.environ, SPAWN_ID_VAR: new_spawn_id(), SPAWN_DEPTH_VAR: "\u00b2"}
    odd = subprocess.Popen(["sleep", "30"], env=env)
    try:
        assert marks_above(odd.pid) == []
    finally:
        odd.kill()
        odd.wait()


def _child_of(pid: int) -> int | None:
    """The `sleep` below `pid`, once `env` has exec'd it: before that the child is sh's
    fork or `env` itself, whose environment still says the ancestors' depth."""
    children = psutil.Process(pid).children()
    return children[0].pid if children and children[0].name() == "sleep" else None


def test_the_cap_on_live_spawns_counts_only_live_ones(
    settings: Settings, project: Path, with_claude: str
) -> None:
    layout = Layout(settings.root)
    me = self_identity()
    for n in range(2):
        write_record(layout, _record(project, f"live{n}", me.pid, me.start))
    dead = _record(project, "dead", 2**22 - 1, "1.00")
    write_record(layout, dead)
    assert sorted(r.name for r in live_records(layout, project)) == ["live0", "live1"]
    assert not layout.spawn_record(dead.spawn_id).exists()  # pruned
    capped = replace(settings, spawn_max_live=2)
    err = refusal(Spawner(layout, capped), caller(project, path=with_claude))
    assert err.code == "spawn-limit" and "cap is 2" in str(err)


def _record(project: Path, name: str, pid: int, start: str) -> SpawnRecord:
    return SpawnRecord(
        spawn_id=new_spawn_id(), client="claude", name=name, role="", project_root=str(project),
        cwd=str(project), depth=1, parent=ParentRef("person", None, "person"),
        runner_pid=pid, runner_start=start,
    )  # fmt: skip


def test_a_client_that_fails_to_start_is_reported_in_its_own_words(
    settings: Settings, project: Path, tmp_path: Path, tmux_server: PrivateTmux
) -> None:
    path = fake_client(tmp_path / "bin", "claude",
                       "echo 'error: unknown option --bogus (from the client)' >&2; exit 1")
    err = refusal(Spawner(Layout(settings.root), settings), caller(project, path=path),
                  name="failing")
    assert err.code == "spawn-client-exited"
    assert "unknown option --bogus (from the client)" in str(err)
    assert "exited with status 1" in str(err)
    assert not list((settings.root / "spawns").glob("*.json"))  # nothing left behind
    windows = tmux_server.run("list-windows", "-a", "-F", "#{window_name}", check=False)
    assert "failing" not in windows  # its window was closed (here: the whole server)


def test_a_forged_parent_claim_does_not_let_anyone_stop_an_agent(
    settings: Settings, project: Path, tmux_server: PrivateTmux
) -> None:
    """A victim started by a person (no spawn id in its environment): a forged spawn record
    naming it and a forged `parent` in its registry entry authorise neither an agent's
    stop_peer (its memory has no such spawn) nor the person's `oxtail-py stop` (the
    kernel shows no spawn id above the victim)."""
    layout = Layout(settings.root)
    env = {"AGENTMAIL_HOME": str(settings.root), "HOME": str(settings.home),
           "OXTAIL_TMUX_SOCKET": str(tmux_server.socket)}
    victim = launch_in_pane(tmux_server, session="victim", cwd=project, env=env)

    async def main() -> None:
        async with victim.client():
            entry = await anyio.to_thread.run_sync(lambda: _entry_in(layout, "victim"))
            pane_pid = int(tmux_server.run("display-message", "-p", "-t", victim.pane,
                                           "#{pane_pid}"))
            runner = identity_of(pane_pid)
            assert runner is not None
            forged = _record(project, "victim", runner.pid, runner.start)
            write_record(layout, forged)
            data = entry.to_dict()
            data["parent"] = {"spawn_id": forged.spawn_id, "by": "person", "depth": 1,
                              "child_name": "victim"}
            Registry(layout).write(SessionEntry.from_dict(data))
            for by in ("agent", "person"):
                who = replace(caller(project), by=by)
                with pytest.raises(OxtailError) as raised:
                    Spawner(layout, settings).stop(who, "victim", project_root=project)
                assert raised.value.code == "not-your-spawn", raised.value
            assert entry.identity.is_alive()

    anyio.run(main)


def _entry_in(layout: Layout, session: str) -> SessionEntry:
    def find() -> SessionEntry | None:
        return next((e for e in Registry(layout).read_all() if e.client.cwd), None)

    found: SessionEntry = wait_until(find, what=f"the {session} server's entry")
    return found


def test_hostile_parent_fields_reject_the_registry_entry() -> None:
    base = {"server_pid": 123, "server_start": "1.00"}
    for parent in (
        {"spawn_id": "../../etc", "by": "person"},
        {"spawn_id": "a" * 32, "by": "root"},
        {"spawn_id": "a" * 32, "by": "agent", "depth": 10**400},
        {"spawn_id": "a" * 32, "by": "agent", "role": "x" * 10_000},
        "not an object",
    ):
        with pytest.raises(OxtailError) as raised:
            SessionEntry.from_dict({**base, "parent": parent})
        assert raised.value.code == "bad-registry-entry", parent
    ok = SessionEntry.from_dict({**base, "parent": {"spawn_id": "a" * 32, "by": "agent"}})
    assert ok.parent is not None and ok.parent.depth == 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))


def test_the_tools_map_refusals_to_stable_codes(
    settings: Settings, project: Path, tmux_server: PrivateTmux, tmp_path: Path
) -> None:
    """spawn_peer and stop_peer over MCP, on real servers: the refusals arrive as error
    results with their codes and a next step."""
    env = {"AGENTMAIL_HOME": str(settings.root), "HOME": str(settings.home),
           "OXTAIL_TMUX_SOCKET": str(tmux_server.socket), "PATH": f"{tmp_path}:/usr/bin:/bin"}
    me = launch_in_pane(tmux_server, session="me", cwd=project, env=env)
    other = launch_in_pane(tmux_server, session="other", cwd=project, env=env)

    async def main() -> None:
        async with me.client() as client, other.client():
            missing = await client.call_tool("spawn_peer", {"client": "codex", "prompt": "x"})
            assert error_code(missing) == "client-not-found"
            assert "doctor" in result_data(missing)["message"]
            big = await client.call_tool(
                "spawn_peer", {"client": "codex", "prompt": "y" * (MAX_BODY_BYTES + 1)}
            )
            assert error_code(big) == "body-too-large"
            await anyio.to_thread.run_sync(lambda: _entry_in(Layout(settings.root), "other"))
            refused = await client.call_tool("stop_peer", {"target": "other"})
            assert error_code(refused) == "not-your-spawn"
            itself = await client.call_tool("stop_peer", {"target": "me"})
            assert error_code(itself) == "stop-self"
            rows = ok(await client.call_tool("list_project_sessions", {}))["sessions"]
            agents = [r for r in rows if r["kind"] == "agent"]
            assert len(agents) == 2 and all(r["parent"] is None for r in agents), agents

    anyio.run(main)


def test_a_window_closed_during_start_ends_the_wait_at_once(
    settings: Settings, project: Path, tmux_server: PrivateTmux, with_claude: str
) -> None:
    """The person closes the helper's window before its server registers: the spawn learns
    it from the runner's exit (a pidfd), not from its 90 s timeout."""
    tmux_server.new_session("keep", project, "sleep 60")
    outcome: list[BaseException] = []

    def spawn() -> None:
        try:
            Spawner(Layout(settings.root), settings).spawn(
                caller(project, path=with_claude), "claude", "hi", name="closing"
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=spawn)
    worker.start()
    wait_until(lambda: "closing" in tmux_server.run("list-windows", "-a", "-F",
                                                    "#{window_name}"), what="the window")
    closed_at = time.monotonic()
    tmux_server.run("kill-window", "-t", "closing")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert time.monotonic() - closed_at < 10
    assert isinstance(outcome[0], OxtailError), outcome
    assert outcome[0].code == "spawn-client-exited" and "window was closed" in str(outcome[0])


def test_codex_with_its_shared_daemon_is_refused_up_front_with_the_fix(
    settings: Settings, project: Path, tmp_path: Path
) -> None:
    path = fake_client(tmp_path / "codex-bin", "codex", "exec sleep 60")
    home = tmp_path / "user"
    who = replace(caller(project, path=path), env={"PATH": path, "HOME": str(home)})
    spawner = Spawner(Layout(settings.root), settings)
    err = refusal(spawner, who, "codex")  # no config: Codex's default starts the daemon
    assert err.code == "codex-daemon" and "daemon_auto_start = false" in str(err)
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text("[features]\ndaemon_auto_start = true\n")
    assert refusal(spawner, who, "codex").code == "codex-daemon"
    os.mkfifo(home / "fifo.toml")  # a FIFO where the config belongs: refused, no hang
    (home / ".codex" / "config.toml").unlink()
    (home / ".codex" / "config.toml").symlink_to(home / "fifo.toml")
    assert refusal(spawner, who, "codex").code == "codex-daemon"
    (home / ".codex" / "config.toml").unlink()
    dotfiles = home / "dotfiles.toml"  # a dotfile manager's symlink is followed
    dotfiles.write_text("model = 'x'\n[features]\ndaemon_auto_start = false\n")
    (home / ".codex" / "config.toml").symlink_to(dotfiles)
    assert codex_daemon_problem(who.env) == ""


def test_hostile_spawn_records_are_not_used(settings: Settings, project: Path) -> None:
    layout = Layout(settings.root)
    good = _record(project, "good", 1, "1.00")
    write_record(layout, good)
    path = layout.spawn_record(good.spawn_id)
    for hostile in (b"[]", b'{"parent": 1}', b"1e400", b"{" * 100_000,
                    json.dumps({**good.to_dict(), "depth": 10**100}).encode(),
                    json.dumps({**good.to_dict(), "client": "sh"}).encode()):
        path.unlink()
        path.write_bytes(hostile)
        assert read_record(layout, good.spawn_id) is None, hostile[:40]
    path.unlink()
    os.mkfifo(path)  # a FIFO where a record belongs: refused without blocking
    assert read_record(layout, good.spawn_id) is None
    assert live_records(layout, project) == []
    assert read_record(layout, "../../x") is None


def test_a_spawned_server_records_its_parent_only_when_its_environment_proves_it(
    settings: Settings, project: Path, tmux_server: PrivateTmux
) -> None:
    """A server exec'd with a spawn id, right below the runner its record names, names that
    spawn's parent in its entry (list_project_sessions shows it). No parent: a record whose
    depth disagrees with the environment, an id no record has, or a record naming a runner
    that is not the one above the server."""
    layout = Layout(settings.root)
    base = {"AGENTMAIL_HOME": str(settings.root), "HOME": str(settings.home),
            "OXTAIL_TMUX_SOCKET": str(tmux_server.socket)}
    ids = {name: new_spawn_id() for name in ("kid", "liar", "orphan", "elsewhere")}
    servers = {
        name: launch_in_pane(tmux_server, session=f"{name}-s", cwd=project,
                             env={**base, SPAWN_ID_VAR: spawn_id, SPAWN_DEPTH_VAR: "1"})
        for name, spawn_id in ids.items()
    }
    runners = {name: _pane_process(tmux_server, s.pane) for name, s in servers.items()}
    # Written before the servers start (they wait for a client on their FIFOs).
    kid = _record(project, "kid", runners["kid"].pid, runners["kid"].start)
    kid.spawn_id, kid.parent, kid.role = ids["kid"], ParentRef("agent", "a" * 8, "mother"), "rev"
    liar = replace(kid, spawn_id=ids["liar"], name="liar", depth=2,
                   runner_pid=runners["liar"].pid, runner_start=runners["liar"].start)
    elsewhere = replace(kid, spawn_id=ids["elsewhere"], name="elsewhere")  # kid's runner
    for record in (kid, liar, elsewhere):
        write_record(layout, record)

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(s.client()) for s in servers.values()]

            def rows() -> dict[str, dict[str, object]] | None:
                listed = anyio.from_thread.run(clients[0].call_tool, "list_project_sessions", {})
                agents = {str(r["name"]): r for r in ok(listed)["sessions"]
                          if r["kind"] == "agent"}
                return agents if len(agents) == 4 else None

            agents = await anyio.to_thread.run_sync(lambda: wait_until(rows, what="4 agents"))
            row = agents["kid"]
            assert (row["parent"], row["spawn_depth"], row["role"]) == ("mother", 1, "rev")
            for other in ("liar-s", "orphan-s", "elsewhere-s"):
                assert agents[other]["parent"] is None, agents[other]

    anyio.run(main)


def _pane_process(server: PrivateTmux, pane: str) -> ProcessIdentity:
    pid = int(server.run("display-message", "-p", "-t", pane, "#{pane_pid}"))
    found = identity_of(pid)
    assert found is not None
    return found


def test_two_parallel_spawns_never_share_a_name_and_a_timeout_leaves_nothing(
    settings: Settings, project: Path, tmux_server: PrivateTmux, with_claude: str
) -> None:
    """The cap and the name are decided under the spawn lock, one spawn at a time. The
    fake client never starts a server, so the spawn that gets the name times out and
    closes its window and record."""
    tmux_server.new_session("keep", project, "sleep 60")
    quick = replace(settings, spawn_timeout_ms=1500)
    outcomes: list[str] = []

    def spawn() -> None:
        try:
            Spawner(Layout(quick.root), quick).spawn(
                caller(project, path=with_claude), "claude", "hi", name="twin"
            )
            outcomes.append("spawned")
        except OxtailError as exc:
            outcomes.append(exc.code)

    workers = [threading.Thread(target=spawn) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(outcomes) == ["name-taken", "spawn-timeout"], outcomes
    assert "twin" not in tmux_server.run("list-windows", "-a", "-F", "#{window_name}")
    assert not list((quick.root / "spawns").glob("*.json"))
