"""Enqueue/drain workers for concurrency and kill -9 tests, as functions and as a script.

    python tests/mailbox_worker.py enqueue ROOT KEY SENDER COUNT [KILL_AT]
    python tests/mailbox_worker.py drain ROOT KEY STOP_FILE [KILL_AT]
    python tests/mailbox_worker.py hold-lock LOCK_DIR SECONDS

Every line a worker emits is flushed at once, so a parent that kills it knows
exactly what it had confirmed:  SENT <id> <body> | HANDED <id>=<body> ... | COMMITTED.
KILL_AT=N sends SIGKILL to the worker just before its N-th file-system mutation
(write, rename, unlink, fsync, mkdir, rmdir, ftruncate, link), which walks the kill point
over every step of the protocol.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Emit = Callable[[str], None]


_MUTATIONS = {"n": 0}


def mutations_so_far() -> int:
    return _MUTATIONS["n"]


def arm_kill(kill_at: int) -> None:
    """Count file-system mutations; SIGKILL ourselves just before number `kill_at` (0: never)."""
    counter = _MUTATIONS

    def wrap(name: str) -> None:
        real = getattr(os, name)

        def patched(*args: Any, **kwargs: Any) -> Any:
            counter["n"] += 1
            if counter["n"] == kill_at > 0:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(os, name, patched)

    for name in ("write", "rename", "unlink", "fsync", "mkdir", "rmdir", "ftruncate", "link"):
        wrap(name)


def enqueue_worker(
    root: Path, key: str, sender: str, count: int, emit: Emit, kill_at: int = 0
) -> None:
    from oxtail_py.layout import Layout
    from oxtail_py.mailbox import Mailbox
    from oxtail_py.messages import Message

    box = Mailbox.open(Layout(root), key)
    arm_kill(kill_at)
    for i in range(count):
        msg = Message.create(f"{sender}:{i}", from_session_id=sender)
        box.enqueue(msg)
        emit(f"SENT {msg.id} {sender}:{i}")


def drain_worker(
    root: Path, key: str, should_stop: Callable[[], bool], emit: Emit, kill_at: int = 0
) -> None:
    from oxtail_py.layout import Layout
    from oxtail_py.mailbox import Mailbox

    box = Mailbox.open(Layout(root), key)
    arm_kill(kill_at)
    while True:
        stopping = should_stop()
        delivery = box.drain()
        if delivery.messages:
            emit("HANDED " + " ".join(f"{m.id}={m.body}" for m in delivery.messages))
            delivery.commit()
            emit("COMMITTED")
        elif stopping:
            return
        else:
            time.sleep(0.001)


def _print(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "hold-lock":
        from oxtail_py.locks import DirLock

        with DirLock(Path(sys.argv[2])):
            _print("LOCKED")
            time.sleep(float(sys.argv[3]))
        _print("RELEASED")
    elif mode == "enqueue":
        kill_at = int(sys.argv[6]) if len(sys.argv) > 6 else 0
        enqueue_worker(
            Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), _print, kill_at
        )
    elif mode == "drain":
        stop_file = Path(sys.argv[4])
        kill_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        drain_worker(Path(sys.argv[2]), sys.argv[3], stop_file.exists, _print, kill_at)


if __name__ == "__main__":
    main()
