"""Many real writer processes and a live drainer: every id exactly once, per-sender order."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.mailbox_worker import __file__ as WORKER


def test_16_writers_x_500_with_a_concurrent_drainer(state_root: Path, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    drainer = subprocess.Popen(
        [sys.executable, WORKER, "drain", str(state_root), "sess-x", str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, WORKER, "enqueue", str(state_root), "sess-x", f"w{n}", "500"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(16)
    ]
    sent: dict[str, str] = {}
    for w in writers:
        out, _ = w.communicate(timeout=240)
        assert w.returncode == 0
        for line in out.splitlines():
            _, msg_id, body = line.split(" ", 2)
            sent[msg_id] = body
    stop.touch()
    out, _ = drainer.communicate(timeout=120)
    assert drainer.returncode == 0

    handed = [
        tuple(item.split("=", 1))
        for line in out.splitlines()
        if line.startswith("HANDED ")
        for item in line[len("HANDED ") :].split(" ")
    ]
    counts = Counter(msg_id for msg_id, _ in handed)
    assert len(sent) == 16 * 500
    assert set(counts) == set(sent)
    assert max(counts.values()) == 1, "a message was delivered twice"
    last_index: dict[str, int] = {}
    for msg_id, body in handed:
        assert sent[msg_id] == body
        sender, index = body.split(":")
        assert int(index) > last_index.get(sender, -1), f"{sender} out of order"
        last_index[sender] = int(index)
