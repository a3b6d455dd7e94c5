"""The asks ledger on a full disk, for real (a small tmpfs): an ask that cannot be
recorded whole (its record and its copy in the wait-for graph) is refused and leaves
nothing behind, and asks work again once there is room."""

from __future__ import annotations

import pytest

from oxtail_py import asks_ledger
from oxtail_py.errors import DiskFullError
from oxtail_py.layout import Layout
from tests.unit.test_asks_ledger import A, B, record
from tests.unit.test_mailbox_disk_full import SmallDisk, disk

__all__ = ["disk"]  # the fixture, shared


@pytest.mark.parametrize("room_for_pages", [0, 1], ids=["no-record", "record-but-no-copy"])
def test_an_ask_the_full_disk_cannot_hold_whole_is_refused_and_leaves_nothing(
    disk: SmallDisk, room_for_pages: int
) -> None:
    layout = Layout(disk.root)
    warm = record(A, B)  # every directory exists before the disk fills
    asks_ledger.open_ask(layout, warm)
    asks_ledger.discard(layout, A, warm.request_id)
    disk.fill(leave_pages=room_for_pages)
    with pytest.raises(DiskFullError):
        asks_ledger.open_ask(layout, record(A, B))
    assert asks_ledger.list_asks(layout) == []
    assert list(layout.waiting_asks_dir.iterdir()) == []
    disk.free()
    later = record(A, B)
    asks_ledger.open_ask(layout, later)
    assert [r.request_id for r in asks_ledger.list_asks(layout)] == [later.request_id]
