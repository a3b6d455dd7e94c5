"""A reader killed after recording a batch larger than the trim keeps, before its
claim is deleted: the recovered claim must deliver none of that batch again."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.mailbox_files import DELIVERED_KEEP, DELIVERED_MAX
from oxtail_py.messages import Message


def _drain_and_die_before_unlinking_the_claim(root: Path) -> None:
    box = Mailbox.open(Layout(root), "sess-t")
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if "claim." in os.fspath(path):
            os.kill(os.getpid(), signal.SIGKILL)
        real_unlink(path, *args, **kwargs)

    os.unlink = unlink  # type: ignore[assignment]
    box.drain().commit()


def test_a_trim_during_a_large_batch_re_delivers_nothing_after_a_kill(tmp_path: Path) -> None:
    root = tmp_path / "am"
    box = Mailbox.open(Layout(root), "sess-t")
    earlier = [f"{i:016x}" for i in range(DELIVERED_MAX - 100)]
    box.paths.delivered.write_bytes("".join(f"{i}\n" for i in earlier).encode())
    batch = [Message.create(f"b{i}", from_session_id="s") for i in range(DELIVERED_KEEP + 1000)]
    box.append_lines(m.to_line() for m in batch)
    pid = os.fork()
    if pid == 0:
        try:
            _drain_and_die_before_unlinking_the_claim(root)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "the reader was not killed at the claim unlink"
    again = box.drain()
    again.commit()
    assert again.messages == [], f"{len(again.messages)} messages delivered twice"
    # Still bounded: the trim kept the batch, not the whole history.
    assert len(box.paths.delivered.read_bytes().split()) <= DELIVERED_KEEP + len(batch)
