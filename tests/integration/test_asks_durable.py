"""Durable asks, would-deadlock and self-healing wakes, end to end: real oxtail servers in
a private tmux server, the real MCP client, and (for wakes) the stand-in TUI client of
tests/integration/fake_client.py, which the wake accepts as a real client by the rule."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from oxtail_py import asks_ledger, receipts, wake
from oxtail_py.asks_ledger import AskState
from oxtail_py.layout import Layout
from oxtail_py.selfheal import RE_POKE, SELF_HEAL
from tests.integration import fake_client
from tests.integration.harness import (
    PrivateTmux,
    ServerProc,
    await_until,
    error_code,
    launch_in_pane,
    ok,
    wait_until,
)

pytestmark = pytest.mark.anyio

SID_A = "aaaaaaaa-0000-4000-8000-0000000000a1"
SID_B = "bbbbbbbb-0000-4000-8000-0000000000b2"
SID_C = "cccccccc-0000-4000-8000-0000000000c3"

_FIFO_DIRS: list[Path] = []


@pytest.fixture(autouse=True)
def _remove_fifo_dirs() -> Iterator[None]:
    yield
    while _FIFO_DIRS:
        shutil.rmtree(_FIFO_DIRS.pop(), ignore_errors=True)


def _server(tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str) -> ServerProc:
    return launch_in_pane(
        tmux, session=name, cwd=cwd, env={**env, "CLAUDE_CODE_SESSION_ID": sid}
    )


def _fake(
    tmux: PrivateTmux, env: dict[str, str], name: str, cwd: Path, sid: str
) -> tuple[ServerProc, Path]:
    """A stand-in Claude TUI whose child is a real oxtail server; (server, submitted lines)."""
    fifo = fake_client.fifo_dir(_FIFO_DIRS)
    entry = fake_client.install(fifo, "claude")
    full = {
        **env,
        "FAKE_TUI_KIND": "claude",
        "FAKE_TUI_MODE": "submit",
        "FAKE_SESSION_ID": sid,
        "FAKE_PYTHON": sys.executable,
        "CLAUDE_CODE_SESSION_ID": sid,
    }
    pane = tmux.new_session(name, cwd, fake_client.command(full, entry, fifo))
    wait_until(
        lambda: "Ask me anything" in tmux.run("capture-pane", "-p", "-t", pane),
        what="the fake TUI",
    )
    return ServerProc(name, pane, fifo, full), fifo / "submitted.txt"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _layout(env: dict[str, str]) -> Layout:
    return Layout(Path(env["AGENTMAIL_HOME"]))


def _waiting(layout: Layout, asker: str) -> list[asks_ledger.AskRecord]:
    return [
        r
        for r in asks_ledger.list_asks(layout, asker=asker)
        if r.effective_state() == AskState.WAITING
    ]


async def test_b_asking_a_while_a_waits_on_b_is_refused_at_once_with_would_deadlock(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    a_srv = _server(tmux_server, server_env, "alpha", project, SID_A)
    b_srv = _server(tmux_server, server_env, "beta", project, SID_B)
    c_srv = _server(tmux_server, server_env, "gamma", project, SID_C)
    async with a_srv.client() as a, b_srv.client() as b, c_srv.client() as c:
        first: dict[str, Any] = {}

        async def a_asks_b() -> None:
            args = {"target": "beta", "body": "q1", "timeout_ms": 30_000, "wake": "off"}
            first.update(ok(await a.call_tool("ask_peer", args)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(a_asks_b)
            await await_until(lambda: _waiting(layout, SID_A), what="A's ask in the ledger")
            started = time.monotonic()
            crossing = await b.call_tool(
                "ask_peer", {"target": "alpha", "body": "q2", "timeout_ms": 30_000, "wake": "off"}
            )
            refused_in = time.monotonic() - started
            assert error_code(crossing) == "would-deadlock"
            assert refused_in < 1.0, refused_in
            assert f"{SID_B} -> {SID_A} -> {SID_B}" in crossing.structured_content["message"]  # type: ignore[index]
            inbox = ok(await b.call_tool("read_my_messages", {}))
            assert [m["body"] for m in inbox["messages"]] == ["q1"]  # q2 was never sent
            request_id = inbox["messages"][0]["request_id"]
            ok(await b.call_tool(
                "send_message", {"target": "alpha", "body": "a1", "reply_to": request_id}
            ))  # fmt: skip
        assert first["status"] == "answered" and first["reply"]["body"] == "a1"
        assert first["ask_state"] == "answered"
        record = asks_ledger.load(layout, SID_A, first["request_id"])
        assert record is not None and record.state == AskState.ANSWERED
        # Once A no longer waits, B may ask A (and A's inbox gets it).
        after = ok(await b.call_tool(
            "ask_peer", {"target": "alpha", "body": "q3", "timeout_ms": 200, "wake": "off"}
        ))  # fmt: skip
        assert after["status"] == "timeout"
        assert ok(await c.call_tool("read_my_messages", {}))["count"] == 0


async def test_a_three_agent_cycle_is_refused(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    servers = [
        _server(tmux_server, server_env, n, project, s)
        for n, s in (("alpha", SID_A), ("beta", SID_B), ("gamma", SID_C))
    ]


    async def ask(client: Any, target: str) -> None:
        args = {"target": target, "body": "q", "timeout_ms": 1_500, "wake": "off"}
        ok(await client.call_tool("ask_peer", args))

    async with (
        servers[0].client() as a,
        servers[1].client() as b,
        servers[2].client() as c,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(ask, a, "beta")
        await await_until(lambda: _waiting(layout, SID_A), what="A -> B")
        tg.start_soon(ask, b, "gamma")
        await await_until(lambda: _waiting(layout, SID_B), what="B -> C")
        refused = await c.call_tool(
            "ask_peer", {"target": "alpha", "body": "q", "timeout_ms": 1_500, "wake": "off"}
        )
        assert error_code(refused) == "would-deadlock"
        assert f"{SID_C} -> {SID_A} -> {SID_B} -> {SID_C}" in str(refused.content)


async def test_a_timed_out_ask_stays_pending_and_its_late_reply_is_marked_late(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    a_srv = _server(tmux_server, server_env, "alpha", project, SID_A)
    b_srv = _server(tmux_server, server_env, "beta", project, SID_B)
    async with a_srv.client() as a, b_srv.client() as b:
        out = ok(await a.call_tool(
            "ask_peer", {"target": "beta", "body": "slow q", "timeout_ms": 200, "wake": "off"}
        ))  # fmt: skip
        rid = out["request_id"]
        assert out["status"] == "timeout" and out["ask_state"] == "pending"
        assert rid in out["note"] and "late_reply_to_ask" in out["note"]
        record = asks_ledger.load(layout, SID_A, rid)
        assert record is not None and record.state == AskState.PENDING
        assert record.target_session_id == SID_B
        ok(await b.call_tool("send_message", {"target": "alpha", "body": "late!", "reply_to": rid}))
        plain = ok(await b.call_tool("send_message", {"target": "alpha", "body": "a note"}))
        inbox = ok(await a.call_tool("read_my_messages", {}))
        marks = {m["body"]: m["late_reply_to_ask"] for m in inbox["messages"]}
        assert marks == {"late!": rid, "a note": None}
        record = asks_ledger.load(layout, SID_A, rid)
        assert record is not None and record.state == AskState.LATE_ANSWERED
        assert record.reply_id != plain["message_id"] and record.reply_id is not None


async def test_an_idle_asker_is_woken_by_its_own_server_when_the_late_reply_comes(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    asker, submitted = _fake(tmux_server, server_env, "asker", project, SID_A)
    peer = _server(tmux_server, server_env, "peer", project, SID_B)
    async with asker.client() as a, peer.client() as b:
        out = ok(await a.call_tool(
            "ask_peer", {"target": "peer", "body": "q", "timeout_ms": 200, "wake": "off"}
        ))  # fmt: skip
        rid = out["request_id"]
        assert out["status"] == "timeout"
        assert _lines(submitted) == []  # nothing to wake for yet
        sent = ok(await b.call_tool(
            "send_message", {"target": SID_A, "body": "the answer", "reply_to": rid}
        ))  # fmt: skip
        # The default idle delay is 30 s; a late reply is due after a 2 s grace.
        await await_until(lambda: _lines(submitted), timeout=15, what="the asker's wake")
        assert _lines(submitted) == [wake.wake_line(SID_B, sent["message_id"])]
        outcomes = await await_until(
            lambda: receipts.read_wake_outcomes(layout, sent["message_id"]), what="outcome"
        )
        assert [(o.by, o.status, o.attempt) for o in outcomes] == [(SELF_HEAL, "confirmed", 1)]
        inbox = ok(await a.call_tool("read_my_messages", {}))
        assert inbox["messages"][0]["late_reply_to_ask"] == rid


async def test_self_heal_wakes_an_idle_agent_with_unread_mail_with_backoff_and_a_cap(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    env = {**server_env, "OXTAIL_HEAL_IDLE_S": "1", "OXTAIL_HEAL_MAX_WAKES": "2"}
    idle, submitted = _fake(tmux_server, env, "idle", project, SID_A)
    sender = _server(tmux_server, server_env, "sender", project, SID_B)
    async with idle.client() as _i, sender.client() as s:
        sent = ok(await s.call_tool("send_message", {"target": "idle", "body": "fyi"}))
        mid = sent["message_id"]

        def tries() -> list[tuple[str, str, int]]:
            return [(o.by, o.status, o.attempt) for o in receipts.read_wake_outcomes(layout, mid)]

        await await_until(lambda: len(tries()) >= 2, timeout=20, what="two self-heal tries")
        # The first wake types the line; the second (1 s x 2 later) finds the agent woken
        # lately for mail it still has not read: the wake's own debounce holds it.
        assert tries() == [(SELF_HEAL, "confirmed", 1), (SELF_HEAL, "skipped_debounced", 2)]
        assert _lines(submitted) == [wake.wake_line(SID_B, mid)]
        await anyio.sleep(5)  # past the next backoff step: the cap holds, nothing more
        assert len(tries()) == 2 and len(_lines(submitted)) == 1
        # The sender sees both tries where it looks: message_status.
        status = ok(await s.call_tool("message_status", {"message_id": mid}))
        assert status["status"] == "pending"
        assert [(w["by"], w["status"]) for w in status["wakes"]] == [
            (SELF_HEAL, "confirmed"), (SELF_HEAL, "skipped_debounced")
        ]


async def test_a_busy_agent_is_not_woken_its_hooks_deliver(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    env = {**server_env, "OXTAIL_HEAL_IDLE_S": "1"}
    busy, submitted = _fake(tmux_server, env, "busy", project, SID_A)
    sender = _server(tmux_server, server_env, "sender", project, SID_B)
    status = layout.status_file(SID_A)
    status.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    status.write_text("busy")
    async with busy.client() as _b, sender.client() as s:
        sent = ok(await s.call_tool("send_message", {"target": "busy", "body": "fyi"}))
        await anyio.sleep(3)
        assert _lines(submitted) == []
        assert receipts.read_wake_outcomes(layout, sent["message_id"]) == []


async def test_a_delegate_silent_on_open_work_is_re_poked_by_the_requesters_server(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    delegate, submitted = _fake(tmux_server, server_env, "delegate", project, SID_A)
    env = {**server_env, "OXTAIL_DELEGATE_SILENT_S": "1", "OXTAIL_HEAL_MAX_WAKES": "1"}
    requester = _server(tmux_server, env, "requester", project, SID_B)
    async with delegate.client() as d, requester.client() as r:
        args = {"target": "delegate", "body": "do X", "action_required": True}
        sent = ok(await r.call_tool("send_message", args))
        mid = sent["message_id"]
        assert ok(await d.call_tool("read_my_messages", {}))["count"] == 1  # read, not done
        assert [w["message_id"] for w in ok(await d.call_tool("my_open_work", {}))["work"]] == [
            mid
        ]
        await await_until(lambda: _lines(submitted), timeout=15, what="the re-poke")
        assert _lines(submitted) == [wake.wake_line(SID_B, mid)]
        # Recorded once the wake returns (after its proof of submission).
        outcomes = await await_until(
            lambda: receipts.read_wake_outcomes(layout, mid), what="the re-poke's outcome"
        )
        assert [(o.by, o.status, o.attempt) for o in outcomes] == [(RE_POKE, "confirmed", 1)]
        await anyio.sleep(3)  # the cap (1) holds
        assert len(_lines(submitted)) == 1
        status = ok(await r.call_tool("message_status", {"message_id": mid}))
        assert status["status"] == "delivered"
        assert [(w["by"], w["status"]) for w in status["wakes"]] == [(RE_POKE, "confirmed")]


async def test_mail_that_came_together_gets_one_wake_line(
    tmux_server: PrivateTmux, server_env: dict[str, str], project: Path
) -> None:
    layout = _layout(server_env)
    env = {**server_env, "OXTAIL_HEAL_IDLE_S": "1", "OXTAIL_HEAL_MAX_WAKES": "1"}
    idle, submitted = _fake(tmux_server, env, "idle", project, SID_A)
    sender = _server(tmux_server, server_env, "sender", project, SID_B)
    async with idle.client() as _i, sender.client() as s:
        first = ok(await s.call_tool("send_message", {"target": "idle", "body": "one"}))
        second = ok(await s.call_tool("send_message", {"target": "idle", "body": "two"}))
        await await_until(
            lambda: receipts.read_wake_outcomes(layout, second["message_id"]),
            timeout=20,
            what="the healer to consider the second message",
        )
        assert _lines(submitted) == [wake.wake_line(SID_B, first["message_id"])]
        later = receipts.read_wake_outcomes(layout, second["message_id"])
        assert [(o.by, o.status) for o in later] == [(SELF_HEAL, "skipped_debounced")]
