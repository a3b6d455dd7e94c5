"""Figures of obligations and receipts: message_status, and reply_to_message vs send_message.

    python bench/obligations.py [--calls 300] [--history 1000]

Two real servers (A, B) in a temp world. First `--history` messages go A -> B and are
read by B (so the ledgers, receipts and B's inbox history are not empty), then:

(a) `message_status` over MCP (call -> result, the SDK client's schema check included)
    for a delivered message and for a pending one, p50/p99; and the core
    (`message_status.message_status` in this process, no MCP) p50/p99.
(b) B answers A's message: `reply_to_message(message_id, body)` vs
    `send_message(target=<A's session id>, body, reply_to=message_id)`, p50/p99 of each
    call -> result, and the ratio of the medians (target: within 2x).
(c) the installed hook as Claude runs it: UserPromptSubmit with no mail and no owed work
    (pure shell) vs one owed item (the helper starts to say so); PreToolUse delivering one
    plain message vs one action_required message (received-ledger, obligation, receipt,
    open-work count).

A's inbox is emptied between samples outside the clock. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from _world import connect, ok, world
from hook_latency import _percentiles, _time_hook
from server_ops import p50_p99, timed_calls

from oxtail_py import handover
from oxtail_py.hooks_install import install
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.message_status import message_status
from oxtail_py.messages import Message
from oxtail_py.settings import Settings

SID_A = "aaaaaaaa-0000-4000-8000-00000000c0a1"
SID_B = "bbbbbbbb-0000-4000-8000-00000000c0b2"


async def run(calls: int, history: int) -> None:
    with world() as w:
        layout = Layout(w.agentmail)
        async with connect(w.server(SID_A)) as a, connect(w.server(SID_B)) as b:
            sent_ids = []
            for n in range(history):
                sent = ok(await a.call_tool("send_message", {"target": SID_B, "body": f"m{n}"}))
                sent_ids.append(sent["message_id"])
                if n % 50 == 49:
                    ok(await b.call_tool("read_my_messages", {}))
            ok(await b.call_tool("read_my_messages", {}))
            delivered = sent_ids[-1]
            pending = ok(await a.call_tool("send_message", {"target": SID_B, "body": "wait"}))
            pending_id = pending["message_id"]

            for label, mid in (("delivered", delivered), ("pending", pending_id)):
                samples = await timed_calls(
                    calls, lambda m=mid: a.call_tool("message_status", {"message_id": m})
                )
                print(f"(a) message_status over MCP, {label:9}: {p50_p99(samples)}")
            core: list[float] = []
            for _ in range(calls):
                start = time.perf_counter()
                message_status(layout, [SID_A], delivered)
                core.append((time.perf_counter() - start) * 1000)
            print(f"(a) message_status core, delivered    : {p50_p99(core)}")

            a_box = Mailbox.open(layout, SID_A)

            def empty_a() -> None:
                a_box.drain().commit()

            reply = await timed_calls(
                calls,
                lambda: b.call_tool("reply_to_message", {"message_id": delivered, "body": "ok"}),
                empty_a,
            )
            plain = await timed_calls(
                calls,
                lambda: b.call_tool(
                    "send_message", {"target": SID_A, "body": "ok", "reply_to": delivered}
                ),
                empty_a,
            )
            print(f"(b) reply_to_message                  : {p50_p99(reply)}")
            print(f"(b) send_message(reply_to)            : {p50_p99(plain)}")
            ratio = statistics.median(reply) / statistics.median(plain)
            print(f"(b) median ratio reply_to_message / send_message: {ratio:.2f}x")


def hooks(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "am", Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "AGENTMAIL_HOME": str(root)}
        layout = Layout(root)
        install(Settings.from_env(env))
        hook = str(root / "hooks" / "oxtail-hook")
        box = Mailbox.open(layout, SID_B)

        def payload(event: str) -> bytes:
            return json.dumps({"session_id": SID_B, "hook_event_name": event},
                              separators=(",", ":")).encode()

        def nothing() -> None:
            pass

        def mail(action_required: bool) -> Callable[[], None]:
            def go() -> None:
                msg = Message.create("please " + "y" * 300, from_session_id=SID_A,
                                     action_required=action_required)
                shutil.rmtree(layout.obligations_dir, ignore_errors=True)  # one owed, not n
                box.enqueue(msg)

            return go

        prompt = [hook, "claude", "userpromptsubmit"]
        idle = [_time_hook(prompt, payload("UserPromptSubmit"), env, nothing) for _ in range(runs)]
        print(f"(c) UserPromptSubmit, no mail, no owed work : {_percentiles(idle)}")
        task = Message.create("owed", from_session_id=SID_A, action_required=True)
        handover.before(layout, SID_B, [task])
        owed = [_time_hook(prompt, payload("UserPromptSubmit"), env, nothing) for _ in range(runs)]
        print(f"(c) UserPromptSubmit, no mail, 1 owed item  : {_percentiles(owed)}")
        tool = [hook, "claude", "pretooluse"]
        for label, flag in (("plain message", False), ("action_required", True)):
            got = [_time_hook(tool, payload("PreToolUse"), env, mail(flag)) for _ in range(runs)]
            print(f"(c) PreToolUse, one {label:23} : {_percentiles(got)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--hook-runs", type=int, default=100)
    args = parser.parse_args()
    anyio.run(run, args.calls, args.history)
    hooks(args.hook_runs)


if __name__ == "__main__":
    main()
