"""A FIFO planted where a mailbox file belongs: nothing blocks, mail still flows."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from oxtail_py.errors import UnsafePathError
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import Message

T = TypeVar("T")


def _promptly(call: Callable[[], T]) -> T:
    """Run `call` in a thread; fail (instead of hanging the suite) if it blocks."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "blocked on a FIFO"
    if error:
        raise error[0]
    return result[0]


def test_a_fifo_inbox_is_refused_at_once_by_every_path(layout: Layout) -> None:
    box = Mailbox.open(layout, "sess-f")
    os.mkfifo(box.paths.inbox, 0o600)
    with pytest.raises(UnsafePathError):
        _promptly(box.drain)
    with pytest.raises(UnsafePathError):
        _promptly(lambda: box.enqueue(Message.create("x", from_session_id="s")))
    with pytest.raises(UnsafePathError):
        _promptly(lambda: box.drain_first(lambda m: True))
    assert _promptly(box.pending_count) == 0
    assert _promptly(lambda: box.holds("0123456789abcdef")) is False


@pytest.mark.parametrize("owner", ["1-1.00", "garbage"])
def test_a_fifo_claim_is_skipped_and_the_inbox_still_drains(layout: Layout, owner: str) -> None:
    box = Mailbox.open(layout, "sess-f")
    fifo = box.paths.directory / f"claim.{owner}.deadbeef.jsonl"
    if owner == "garbage":
        fifo = box.paths.directory / "claim.garbage.jsonl"
    os.mkfifo(fifo, 0o600)
    sent = Message.create("still here", from_session_id="s")
    box.enqueue(sent)
    delivery = _promptly(box.drain)
    assert delivery.messages == [sent]
    delivery.commit()
    box.enqueue(sent := Message.create("two", from_session_id="s"))
    one = _promptly(lambda: box.drain_first(lambda m: True))
    assert one is not None and one.messages == [sent]
    one.commit()
    other = Mailbox.open(layout, "sess-g")
    box.enqueue(Message.create("three", from_session_id="s"))
    assert _promptly(lambda: box.move_all_to(other)) == 1
    assert fifo.exists()  # left for a human: we cannot read it, we do not delete it


def test_a_fifo_delivered_ledger_fails_clearly(layout: Layout, tmp_path: Path) -> None:
    box = Mailbox.open(layout, "sess-f")
    box.enqueue(Message.create("x", from_session_id="s"))
    os.mkfifo(box.paths.delivered, 0o600)
    with pytest.raises(UnsafePathError):
        _promptly(box.drain)
    os.unlink(box.paths.delivered)
    delivery = _promptly(box.drain)  # the failed drain gave its claim back
    assert [m.body for m in delivery.messages] == ["x"]
    delivery.commit()
