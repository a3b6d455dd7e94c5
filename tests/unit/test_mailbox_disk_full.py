"""A full disk, for real (a small tmpfs as the state root): a send completes or fails
with `disk-full` and leaves nothing half-written; no claim hides mail from a live reader."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_py.errors import DiskFullError
from oxtail_py.layout import Layout
from oxtail_py.mailbox import Mailbox
from oxtail_py.messages import MAX_BODY_BYTES, Message

_DISK_BYTES = 256 * 1024
_PAGE = 4096


class SmallDisk:
    def __init__(self, mount: Path) -> None:
        self.root = mount / "agentmail"
        self._filler = mount / "filler"

    def fill(self, leave_pages: int = 0) -> None:
        """Take every free page, then give back `leave_pages` of them."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            chunk = b"f" * _PAGE
            while True:
                try:
                    if os.write(fd, chunk) < len(chunk):
                        break
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
            size = os.fstat(fd).st_size // _PAGE * _PAGE
            os.ftruncate(fd, max(0, size - leave_pages * _PAGE))
        finally:
            os.close(fd)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallDisk]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={_DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: cannot mount a small tmpfs here ({done.stderr.strip()})")
    try:
        small = SmallDisk(mount)
        monkeypatch.setenv("AGENTMAIL_HOME", str(small.root))
        yield small
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _box(disk: SmallDisk) -> Mailbox:
    return Mailbox.open(Layout(disk.root), "sess-full")


def _msgs(n: int, body: str = "m") -> list[Message]:
    return [Message.create(f"{body}{i}", from_session_id="s1") for i in range(n)]


def test_a_send_that_only_half_fits_fails_with_disk_full_and_leaves_no_torn_line(
    disk: SmallDisk,
) -> None:
    box = _box(disk)
    sent = _msgs(2)
    for m in sent:
        box.enqueue(m)
    before = box.paths.inbox.read_bytes()
    disk.fill()
    # The inbox's last page has room for part of a full-size body: a short write.
    big = Message.create("x" * MAX_BODY_BYTES, from_session_id="s1")
    with pytest.raises(DiskFullError) as raised:
        box.enqueue(big)
    assert raised.value.code == "disk-full"
    assert box.paths.inbox.read_bytes() == before, "a failed send left bytes behind"
    disk.free()
    delivery = box.drain()
    assert [m.id for m in delivery.messages] == [m.id for m in sent]
    delivery.commit()
    assert not box.paths.quarantine.exists()


def test_a_put_back_that_fails_on_a_full_disk_hides_nothing_from_the_same_live_reader(
    disk: SmallDisk,
) -> None:
    box = _box(disk)
    sent = _msgs(3)
    for m in sent:
        box.enqueue(m)
    taken = box.drain()
    disk.fill()
    with contextlib.suppress(DiskFullError):  # the old code raised here, claim stranded
        taken.abort()
    # Same live process, disk still full: the stale claim of ours is taken as it is.
    again = box.drain()
    assert [m.id for m in again.messages] == [m.id for m in sent]
    again.commit()  # the record cannot be written, but the claim goes: no duplicate
    assert box.drain().messages == []
    assert box.claims() == []
    disk.free()
    assert box.drain().messages == []


def test_commit_first_on_a_full_disk_loses_nothing(disk: SmallDisk) -> None:
    box = _box(disk)
    sent = _msgs(4)
    for m in sent:
        box.enqueue(m)
    taken = box.drain()
    disk.fill()
    taken.commit_first(1)  # neither the record nor the put-back fits
    disk.free()
    rest = box.drain()
    # Only the documented duplicate: the first was handed over and never recorded.
    assert [m.id for m in rest.messages] == [m.id for m in sent]
    rest.commit()


def test_drain_first_on_a_full_disk_fails_clearly_and_keeps_the_inbox(disk: SmallDisk) -> None:
    box = _box(disk)
    sent = _msgs(3)
    for m in sent:
        box.enqueue(m)
    before = box.paths.inbox.read_bytes()
    disk.fill()
    with pytest.raises(DiskFullError):
        box.drain_first(lambda m: m.id == sent[1].id)
    assert box.paths.inbox.read_bytes() == before
    assert box.claims() == []
    disk.free()
    one = box.drain_first(lambda m: m.id == sent[1].id)
    assert one is not None and one.messages == [sent[1]]
    one.commit()


def test_a_corrupt_line_that_cannot_be_quarantined_waits_with_its_batch(disk: SmallDisk) -> None:
    box = _box(disk)
    good = _msgs(2)
    box.enqueue(good[0])
    box.append_lines([b"not json\n"])
    box.enqueue(good[1])
    disk.fill()
    with pytest.raises(DiskFullError):
        box.drain()
    disk.free()
    delivery = box.drain()
    assert [m.id for m in delivery.messages] == [m.id for m in good]
    delivery.commit()
    assert b"not json" in box.paths.quarantine.read_bytes()


def test_a_move_into_a_full_box_loses_nothing_and_completes_later(disk: SmallDisk) -> None:
    layout = Layout(disk.root)
    pid_box = Mailbox.open(layout, "pid-1-1.00")
    session_box = Mailbox.open(layout, "sess-full")
    sent = _msgs(3)
    for m in sent:
        pid_box.enqueue(m)
    disk.fill()
    with pytest.raises(DiskFullError):
        pid_box.move_all_to(session_box)
    assert session_box.pending_count() == 0
    disk.free()
    assert pid_box.move_all_to(session_box) == 3
    delivery = session_box.drain()
    assert [m.id for m in delivery.messages] == [m.id for m in sent]
    delivery.commit()


def test_the_delivered_trim_on_a_full_disk_keeps_the_ledger_correct(disk: SmallDisk) -> None:
    box = _box(disk)
    old_ids = [f"{i:016x}" for i in range(4090)]
    box.paths.delivered.write_bytes("".join(f"{i}\n" for i in old_ids).encode())
    sent = _msgs(10)
    for m in sent:
        box.enqueue(m)
    taken = box.drain()
    disk.fill(leave_pages=1)  # room for the append, none for the trimmed copy
    taken.commit()
    ledger = box.paths.delivered.read_bytes().decode().split()
    assert ledger == old_ids + [m.id for m in sent]
    disk.free()
    box.enqueue(_msgs(1, "later")[0])
    box.drain().commit()
    assert len(box.paths.delivered.read_bytes().split()) == 2048
