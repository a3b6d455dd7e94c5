"""Group targets: parsing, membership by client type and role, one copy per mailbox,
the sender never included, and the errors for bad, empty and over-cap groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxtail_py.discovery import Listing, Row
from oxtail_py.registry import ClientInfo, SessionEntry, StateCard
from oxtail_py.targets import (
    BadGroupError,
    EmptyGroupError,
    GroupKind,
    OverCapError,
    SkipReason,
    is_group,
    parse_group,
    select,
)


def agent(name: str, sid: str, client: str | None, *, role: str = "", me: bool = False,
          pid: int = 100) -> Row:  # fmt: skip
    entry = SessionEntry(pid, "1.00", client=ClientInfo(type=client, session_id=sid),
                         state=StateCard(role=role))  # fmt: skip
    return Row("agent", name, client_type=client, client_session_id=sid, role=role, is_me=me,
               entry=entry)  # fmt: skip


def listing(*rows: Row) -> Listing:
    return Listing(Path("/proj"), True, list(rows), True, [])


ME = agent("me", "s-me", "claude", me=True)
CL = agent("cl", "s-cl", "claude", role="reviewer")
CX1 = agent("cx1", "s-cx1", "codex")
CX2 = agent("cx2", "s-cx2", "codex", role="reviewer")
PANE = Row("pane", "notes", tmux_pane="%9", pane_command="bash")


def test_parse_groups_and_refuse_others() -> None:
    assert parse_group("@all").kind == GroupKind.ALL
    assert parse_group(" @Codex ").kind == GroupKind.CODEX
    group = parse_group("@role:Reviewer")
    assert group.kind == GroupKind.ROLE and group.role == "reviewer"
    assert group.label == "@role:reviewer"
    assert is_group("@all") and not is_group("alpha")
    for bad in ("@", "@everyone", "@role:", "@role:two words", "@role:" + "x" * 40):
        with pytest.raises(BadGroupError) as err:
            parse_group(bad)
        assert err.value.code == "bad-broadcast-target"


def test_members_by_client_type_and_role_never_the_sender() -> None:
    world = listing(ME, CL, CX1, CX2, PANE)
    codex = select(world, parse_group("@codex"), 16)
    assert [r.name for r in codex.members] == ["cx1", "cx2"] and codex.skipped == []
    reviewers = select(world, parse_group("@role:reviewer"), 16)
    assert [r.name for r in reviewers.members] == ["cl", "cx2"]
    everyone = select(world, parse_group("@all"), 16)
    assert [r.name for r in everyone.members] == ["cl", "cx1", "cx2"]
    assert [(s.name, s.reason) for s in everyone.skipped] == [("notes", SkipReason.NO_AGENT)]


def test_two_rows_of_one_mailbox_get_one_copy() -> None:
    twin = agent("cx1-again", "s-cx1", "codex", pid=101)
    picked = select(listing(CX1, twin), parse_group("@codex"), 16)
    assert [r.name for r in picked.members] == ["cx1"]
    assert [(s.name, s.reason) for s in picked.skipped] == [("cx1-again", SkipReason.DUPLICATE)]


def test_empty_and_over_cap_groups_are_refused() -> None:
    with pytest.raises(EmptyGroupError) as empty:
        select(listing(ME, CX1), parse_group("@claude"), 16)
    assert empty.value.code == "empty-broadcast-group"
    with pytest.raises(OverCapError) as over:
        select(listing(ME, CL, CX1, CX2), parse_group("@all"), 2)
    assert over.value.code == "broadcast-over-cap" and "at most 2" in str(over.value)
